package build_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/buildtest"
	"github.com/sitehost/sitehost/internal/hugorelease/releasetest"
	"github.com/sitehost/sitehost/internal/npm"
	"github.com/sitehost/sitehost/internal/npm/npmtest"
)

// nodeSite writes files as a site, makes its package-lock.json for pkg
// from the registry, and installs it with an Installer whose cache is in
// cache.
func nodeSite(t testing.TB, reg *npmtest.Registry, node, cache string, pkg map[string]any, files map[string]string) (string, npm.Result) {
	t.Helper()
	_, npmExe := npmtest.Tools(t)
	src := filepath.Join(t.TempDir(), "src")
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	npmtest.Site(t, src, reg, npmExe, node, pkg)
	res := install(t, reg, node, cache, src)
	return src, res
}

func install(t testing.TB, reg *npmtest.Registry, node, cache, src string) npm.Result {
	t.Helper()
	_, npmExe := npmtest.Tools(t)
	in := npm.New(npm.Options{NPM: npmExe, Node: node, Registry: reg.URL, CacheDir: cache})
	res, err := in.Install(context.Background(), "test", src, false)
	if err != nil {
		t.Fatalf("npm install: %v", err)
	}
	return res
}

const tailwindVersion = "^4.1.0"

var tailwindPkg = map[string]any{"devDependencies": map[string]string{
	"tailwindcss": tailwindVersion, "@tailwindcss/cli": tailwindVersion,
}}

// tailwindSite is a Tailwind v4 site as Hugo's docs set one up: the site
// allows tailwindcss in its own security.exec.allow.
var tailwindSite = map[string]string{
	"hugo.toml": "disableKinds = ['page','rss','section','sitemap','taxonomy','term']\n" +
		"[security.exec]\nallow = ['^git$', '^node$', '^tailwindcss$']\n",
	"assets/css/main.css": "@import \"tailwindcss\";\n",
	"layouts/home.html": `<!doctype html><html><head>{{ with resources.Get "css/main.css" | css.TailwindCSS }}<link rel="stylesheet" href="{{ .RelPermalink }}">{{ end }}</head>` +
		`<body><p class="underline decoration-wavy text-emerald-700 sm:grid-cols-7">hello</p></body></html>` + "\n",
}

func TestTailwindV4Build(t *testing.T) {
	node := buildtest.Node(t)
	reg := npmtest.NewRegistry(t)
	src, _ := nodeSite(t, reg, node, t.TempDir(), tailwindPkg, tailwindSite)
	b := newBuilder(t, build.Options{Node: node})
	req := hugoRequest(t, src)
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	css, err := os.ReadFile(filepath.Join(req.Out, "css", "main.css"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tailwindcss v4.", ".underline", ".decoration-wavy", ".text-emerald-700", "grid-cols-7"} {
		if !strings.Contains(string(css), want) {
			t.Errorf("CSS lacks %q:\n%.2000s", want, css)
		}
	}
	if strings.Contains(string(css), ".decoration-dotted") {
		t.Error("CSS has a class no page uses: not Tailwind's scan")
	}
}

func TestPostCSSAutoprefixerBuild(t *testing.T) {
	node := buildtest.Node(t)
	reg := npmtest.NewRegistry(t)
	src, _ := nodeSite(t, reg, node, t.TempDir(),
		map[string]any{"devDependencies": map[string]string{"postcss": "^8.4.0", "postcss-cli": "^11.0.0", "autoprefixer": "^10.4.0"}},
		map[string]string{
			// No [security]: Hugo's default exec.allow has node and postcss.
			"hugo.toml":          "disableKinds = ['page','rss','section','sitemap','taxonomy','term']\n",
			"postcss.config.js":  "module.exports = { plugins: [require('autoprefixer')({ overrideBrowserslist: ['ie 10', 'safari 8'] })] }\n",
			"assets/css/app.css": ".box { display: flex; user-select: none; }\n",
			"layouts/home.html":  `{{ with resources.Get "css/app.css" | css.PostCSS }}<link rel="stylesheet" href="{{ .RelPermalink }}">{{ end }}` + "\n",
		})
	b := newBuilder(t, build.Options{Node: node})
	req := hugoRequest(t, src)
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	css, err := os.ReadFile(filepath.Join(req.Out, "css", "app.css"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".box", "-ms-flexbox", "-webkit-user-select", "user-select: none"} {
		if !strings.Contains(string(css), want) {
			t.Errorf("CSS lacks %q:\n%s", want, css)
		}
	}
}

// The exec ceiling and the site's own exec.allow need no installed
// packages: Hugo refuses a tool before it looks for it.
func TestExecAllowCeilingAndSite(t *testing.T) {
	for _, tt := range []struct {
		name      string
		ceiling   []string
		node      string
		siteAllow string // "" : no [security] (Hugo's default)
		template  string
		want      []string
	}{
		{"ceiling forbids tailwindcss", []string{"sass", "node", "postcss"}, "/nonexistent/node", "['^node$', '^tailwindcss$']",
			`{{ with resources.Get "css/main.css" | css.TailwindCSS }}{{ .RelPermalink }}{{ end }}`,
			[]string{`"tailwindcss"`, "server.build.exec_allow"}},
		{"site narrows postcss away", nil, "/nonexistent/node", "['^node$']",
			`{{ with resources.Get "css/main.css" | css.PostCSS }}{{ .RelPermalink }}{{ end }}`,
			[]string{`"postcss"`, "site's own security.exec.allow"}},
		{"site cannot widen", []string{"node", "postcss"}, "/nonexistent/node", "['.*']",
			`{{ with resources.Get "main.js" | js.Babel }}{{ .RelPermalink }}{{ end }}`,
			[]string{`"babel"`, "server.build.exec_allow is [node, postcss]"}},
		{"Hugo's default has no tailwindcss", nil, "/nonexistent/node", "",
			`{{ with resources.Get "css/main.css" | css.TailwindCSS }}{{ .RelPermalink }}{{ end }}`,
			[]string{`"tailwindcss"`, `add "^tailwindcss$"`}},
		{"no node on the server", nil, "", "['^node$', '^postcss$']",
			`{{ with resources.Get "css/main.css" | css.PostCSS }}{{ .RelPermalink }}{{ end }}`,
			[]string{`"postcss"`, "no node v"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conf := "disableKinds = ['page','rss','section','sitemap','taxonomy','term']\n"
			if tt.siteAllow != "" {
				conf += "[security.exec]\nallow = " + tt.siteAllow + "\n"
			}
			src := copySite(t, map[string]string{
				"hugo.toml": conf, "assets/css/main.css": "a{}\n", "assets/main.js": "let a = 1;\n",
				"layouts/home.html": tt.template + "\n",
			})
			b := newBuilder(t, build.Options{Node: tt.node, ExecAllow: tt.ceiling})
			_, err := b.Build(context.Background(), hugoRequest(t, src))
			if !build.IsUserError(err) {
				t.Fatalf("want a user error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestBabelBuild(t *testing.T) {
	node := buildtest.Node(t)
	reg := npmtest.NewRegistry(t)
	src, _ := nodeSite(t, reg, node, t.TempDir(),
		map[string]any{"devDependencies": map[string]string{"@babel/cli": "^7.25.0", "@babel/core": "^7.25.0", "@babel/preset-env": "^7.25.0"}},
		map[string]string{
			"hugo.toml": "disableKinds = ['page','rss','section','sitemap','taxonomy','term']\n" +
				"[security.exec]\nallow = ['^node$', '^babel$']\n",
			"babel.config.json": `{"presets": [["@babel/preset-env", {"targets": "ie 11"}]]}` + "\n",
			"assets/js/main.js": "const greet = (name) => `hello ${name}`;\n",
			"layouts/home.html": `{{ with resources.Get "js/main.js" | js.Babel }}<script src="{{ .RelPermalink }}"></script>{{ end }}` + "\n",
		})
	b := newBuilder(t, build.Options{Node: node})
	req := hugoRequest(t, src)
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	js, err := os.ReadFile(filepath.Join(req.Out, "js", "main.js"))
	if err != nil {
		t.Fatal(err)
	}
	// ES5 for IE 11: no arrow function, no template literal.
	if strings.Contains(string(js), "=>") || strings.Contains(string(js), "`") || !strings.Contains(string(js), "function") {
		t.Errorf("not transpiled for IE 11:\n%s", js)
	}
}

// A fetched release narrows the ceiling by its own reading of the site's
// config (one more `hugo config`, without sitehost's policy): v0.123.4 runs
// PostCSS as `npx postcss`, refused with a hint, and the policy it prints
// with the refusal is the ceiling cut to the site's ['^node$'].
func TestExecAllowWithARelease(t *testing.T) {
	exe := releasetest.Hugo(t, releasetest.OldHugo)
	store := releaseStore(t, releasetest.NewMirror(t, map[string]string{releasetest.OldHugo: exe}), filepath.Join(t.TempDir(), "hugo"))
	tmpl := `{{ with resources.Get "css/main.css" | resources.PostCSS }}{{ .RelPermalink }}{{ end }}` + "\n" // v0.123 has no css.PostCSS
	b := newBuilder(t, build.Options{Node: "/nonexistent/node", Releases: store})
	req := hugoRequest(t, copySite(t, map[string]string{
		"hugo.toml":           "disableKinds = ['page','rss','section','sitemap','taxonomy','term']\n[security.exec]\nallow = ['^node$']\n",
		"assets/css/main.css": "a{}\n",
		"layouts/home.html":   tmpl, "layouts/index.html": tmpl,
	}))
	req.Settings.HugoVersion = releasetest.OldHugo
	res, err := b.Build(context.Background(), req)
	if !build.IsUserError(err) || !strings.Contains(err.Error(), `"npx"`) || !strings.Contains(err.Error(), "node_modules/.bin itself") {
		t.Fatalf("want npx refused with the hint, got %v", err)
	}
	if !strings.Contains(string(res.Log), "allow = ['^node$']") {
		t.Errorf("the release's policy is not the ceiling narrowed to the site's ['^node$']:\n%s", res.Log)
	}
}
