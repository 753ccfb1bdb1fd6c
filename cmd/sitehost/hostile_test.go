package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sitehost/sitehost/internal/build/buildtest"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/npm/npmtest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestHostileBuilds: a site's own PostCSS plugin — code in the repository,
// run by Hugo's css.PostCSS through node — tries to reach what a build must
// not: the host's files, the server's data dir and environment, the
// network, the process table, the disk. Each build fails or is contained:
// nothing of the server reaches the output, the test's listener on
// 127.0.0.1 is never reached, and the live deploy keeps serving.
func TestHostileBuilds(t *testing.T) {
	node := buildtest.Node(t)
	_, npmExe := npmtest.Tools(t)
	reg := npmtest.NewRegistry(t)

	// What must not leak.
	const serverSecret = "SERVER-ENV-SECRET-5d1e"
	t.Setenv("SITEHOST_TEST_SERVER_SECRET", serverSecret)
	data := t.TempDir()
	const dataSecret = "DATA-DIR-SECRET-0b7c"
	if err := os.WriteFile(filepath.Join(data, "secret.txt"), []byte(dataSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.ReadFile("/etc/hostname")
	var connections atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connections.Add(1)
			c.Write([]byte("LISTENER-REACHED-4a2f\n")) //nolint:errcheck // the test only counts
			c.Close()
		}
	}()

	repo := gittest.New(t, "")
	for name, content := range map[string]string{
		"hugo.toml": "baseURL = 'https://blog.test/'\ndisableKinds = ['page','rss','section','sitemap','taxonomy','term']\n" +
			"[security.exec]\nallow = ['^git$', '^node$', '^postcss$']\n",
		"assets/main.css":   "body { color: red; }\n",
		"postcss.config.js": "module.exports = { plugins: [require('./plugin.js')] };\n",
		"plugin.js":         plugin(`/* harmless */`),
		"layouts/home.html": `<!doctype html><h1>{{ .Site.Title }}</h1>{{ with resources.Get "main.css" | css.PostCSS }}<style>{{ .Content | safeCSS }}</style>{{ end }}` + "\n",
	} {
		repo.Write(name, content)
	}
	npmtest.Site(t, repo.Work, reg, npmExe, node, map[string]any{"devDependencies": map[string]string{
		"postcss": "^8.4.0", "postcss-cli": "^11.0.0",
	}})
	repo.Commit("A site with its own PostCSS plugin")

	cfg := testConfig(t, data, siteYAML(repo.URL()),
		"  build:\n    timeout: 2m\n    memory: 512MiB\n    node: "+node+"\n    npm: "+npmExe+"\n    npm_registry: "+reg.URL+"\n")
	srv := startServer(t, cfg, map[string]string{"SITEHOST_TEST_SERVER_SECRET": serverSecret})
	syncSite(t, srv, "blog")
	live := get(t, srv, "blog.test", "/")
	if live.status != 200 || !strings.Contains(live.body, "color:red") && !strings.Contains(live.body, "color: red") {
		t.Fatalf("the harmless plugin's build: %d %q\n%s", live.status, live.body, lastLog(t, srv, "blog"))
	}

	port := ln.Addr().(*net.TCPAddr).Port
	for _, tt := range []struct{ name, js string }{
		{"read host files", `leak(fs.readFileSync('/etc/hostname', 'utf8')); leak(fs.readFileSync(` + jsString(filepath.Join(data, "secret.txt")) + `, 'utf8'));`},
		{"read the server's environment", `leak(JSON.stringify(process.env)); leak(fs.readFileSync('/proc/' + process.ppid + '/environ', 'utf8'));`},
		{"read the server's process", `for (const p of fs.readdirSync('/proc')) { try { leak(fs.readFileSync('/proc/' + p + '/environ', 'utf8')); } catch (e) {} }`},
		{"connect to the host", fmt.Sprintf(`await new Promise((ok) => { const s = require('net').connect(%d, '127.0.0.1', () => { s.on('data', (d) => { leak(String(d)); s.end(); ok(); }); }); s.on('error', () => ok()); });`, port)},
		{"fork without end", `const cp = require('child_process'); for (let i = 0; i < 10000; i++) { try { cp.spawn('/bin/sleep', ['60'], { detached: true, stdio: 'ignore' }).unref(); } catch (e) { leak('spawn stopped at ' + i); break; } }`},
		{"fill the disk", `const b = Buffer.alloc(64 << 20, 120); const fd = fs.openSync(require('path').join(require('os').tmpdir(), 'big'), 'w'); for (let i = 0; i < 160; i++) fs.writeSync(fd, b); fs.closeSync(fd);`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo.Write("plugin.js", plugin(tt.js))
			repo.Commit("Plugin: " + tt.name)
			syncSite(t, srv, "blog")
			st, _ := srv.loop.SiteStatus("blog")
			t.Logf("%s: %s %s", tt.name, st.State, st.Error)
			for _, needle := range []string{serverSecret, dataSecret, "LISTENER-REACHED-4a2f"} {
				if f := storeContains(t, filepath.Join(data, "store"), needle); f != "" {
					t.Errorf("%q published in %s", needle, f)
				}
			}
			if h := strings.TrimSpace(string(hostname)); len(h) >= 6 {
				if f := storeContains(t, filepath.Join(data, "store", "blobs"), h); f != "" {
					t.Errorf("/etc/hostname published in %s", f)
				}
			}
			if n := connections.Load(); n != 0 {
				t.Errorf("the build reached the host's listener %d times", n)
			}
			if got := get(t, srv, "blog.test", "/"); got.status != 200 {
				t.Errorf("live deploy: %d", got.status)
			}
		})
	}
	// Nothing of the hostile builds is left running or on disk.
	var big int64
	_ = filepath.Walk(data, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Size() > 1<<30 {
			big += fi.Size()
		}
		return nil
	})
	if big > 0 {
		t.Errorf("%d bytes of files over 1 GiB left in data_dir", big)
	}
	if st, _ := srv.loop.SiteStatus("blog"); st.LiveCommit == "" || st.Channels[site.Production].LiveDeploy == "" {
		t.Errorf("nothing live at the end: %+v", st)
	}
}

// plugin is a PostCSS plugin running body once per build, with leak(s)
// appending s to the CSS as a comment.
func plugin(body string) string {
	return `const fs = require('fs');
module.exports = () => ({
  postcssPlugin: 'hostile',
  async Once(root) {
    const leak = (s) => root.append({ text: String(s).replace(/\*\//g, '') });
    ` + body + `
  },
});
module.exports.postcss = true;
`
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }
