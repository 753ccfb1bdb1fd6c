package sandbox

import (
	"errors"
	"strings"
	"testing"
)

// TestAdmit is the decision every build and npm install goes through,
// on every system: off Linux a sandbox is uncontained(), so this runs the
// darwin path's decision on Linux, without faking a kernel.
func TestAdmit(t *testing.T) {
	off := uncontained("/usr/local/bin/sitehost", "darwin")
	for _, tc := range []struct {
		name             string
		sb               *Sandbox
		untrusted, allow bool
		refused          string // "": admitted; else in the error
	}{
		{"darwin, trusted", off, false, false, ""},
		{"darwin, untrusted", off, true, false, "no sandbox on darwin"},
		{"darwin, untrusted, allow_unsandboxed", off, true, true, ""},
		{"sandbox off, trusted", nil, false, false, ""},
		{"sandbox off, untrusted", nil, true, false, "the sandbox is off"},
		{"sandbox off, untrusted, allow_unsandboxed", nil, true, true, ""},
		{"landlock, untrusted", &Sandbox{policy: policy{Landlock: 1}}, true, false, ""},
		{"user namespace, untrusted", &Sandbox{userNS: true}, true, false, ""},
		{"registry port, landlock v3, untrusted", &Sandbox{policy: policy{Landlock: 3}, userNS: true, network: true, inForce: []string{"host network, any port"}}, true, false, "host network, any port"},
		{"registry port, landlock v4, untrusted", &Sandbox{policy: policy{Landlock: 4}, network: true}, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Admit(tc.sb, tc.untrusted, tc.allow)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (!errors.Is(err, ErrUncontained) || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("error %v, want ErrUncontained saying %q", err, tc.refused)
			}
		})
	}
}

// TestOffLinuxStartup: the startup log off Linux says there is no
// sandbox, what is missing and what that means for untrusted builds.
func TestOffLinuxStartup(t *testing.T) {
	got := offLinux("darwin")
	for _, want := range []string{"no sandbox on darwin", "landlock", "namespaces", "cgroups", "server's user", "refused unless server.build.allow_unsandboxed"} {
		if !strings.Contains(got, want) {
			t.Errorf("startup line %q does not say %q", got, want)
		}
	}
	if s := uncontained("/x", "darwin").String(); s != "no sandbox on darwin" {
		t.Errorf("in force: %q, want %q", s, "no sandbox on darwin")
	}
}
