package npm

import (
	"errors"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
)

// npm 11's output for failures seen in the tests and by hand.
func TestParseError(t *testing.T) {
	for _, tt := range []struct {
		name, out, code, pkg string
		kind                 fault.Kind
		msg                  string
	}{
		{"missing package", `npm error code E404
npm error 404 Not Found - GET http://127.0.0.1:40327/sitehost-no-such-package-4f1c2a - Not found
npm error 404
npm error 404  'sitehost-no-such-package-4f1c2a@1.0.0' is not in this registry.
npm error 404
npm error 404 Note that you can also install from a
npm error 404 tarball, folder, http url, or git url.
npm error A complete log of this run can be found in: /x/_logs/2026-12-02T14_38_09_716Z-debug-0.log
`, "E404", "sitehost-no-such-package-4f1c2a", fault.KindStalled, "'sitehost-no-such-package-4f1c2a@1.0.0' is not in this registry."},
		{"scoped tarball", `npm error code E404
npm error 404 Not Found - GET https://registry.npmjs.org/@acme/theme/-/theme-1.0.0.tgz - Not found
`, "E404", "@acme/theme", fault.KindStalled, "404 Not Found"},
		{"registry down", `npm error code ECONNREFUSED
npm error syscall connect
npm error errno ECONNREFUSED
npm error FetchError: request to http://127.0.0.1:1/left-pad failed, reason: connect ECONNREFUSED 127.0.0.1:1
npm error     at ClientRequest.<anonymous> (/usr/lib/node_modules/npm/node_modules/minipass-fetch/lib/index.js:130:14)
npm error     at process.processTicksAndRejections (node:internal/process/task_queues:83:21) {
npm error   code: 'ECONNREFUSED',
npm error   type: 'system',
npm error   requiredBy: '.'
npm error }
npm error
npm error If you are behind a proxy, please make sure that the 'proxy' config is set properly.  See: 'npm help config'
`, "ECONNREFUSED", "left-pad", fault.KindTransient, "FetchError: request to http://127.0.0.1:1/left-pad failed, reason: connect ECONNREFUSED 127.0.0.1:1"},
		{"registry error", "npm error code E503\nnpm error 503 Service Unavailable - GET https://registry.npmjs.org/left-pad\n", "E503", "left-pad", fault.KindTransient, "503 Service Unavailable"},
		{"lockfile out of step", "npm error code EUSAGE\nnpm error\nnpm error `npm ci` can only install packages when your package.json and package-lock.json or npm-shrinkwrap.json are in sync. Please update your lock file with `npm install` before continuing.\nnpm error\nnpm error Missing: left-pad@1.0.0 from lock file\n",
			"EUSAGE", "", fault.KindStalled, "Missing: left-pad@1.0.0 from lock file"},
		{"no npm error lines", "Segmentation fault\n", "", "", fault.KindTransient, "Segmentation fault"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := parseError(tt.out, errors.New("exit status 1"))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T", err)
			}
			if e.Code != tt.code || e.Package != tt.pkg || fault.KindOf(err) != tt.kind || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("code %q package %q kind %s message:\n%s", e.Code, e.Package, fault.KindOf(err), e.Message)
			}
			for _, noise := range []string{"complete log", " at ", "requiredBy", "Note that"} {
				if strings.Contains(e.Message, noise) {
					t.Errorf("message keeps %q:\n%s", noise, e.Message)
				}
			}
		})
	}
}
