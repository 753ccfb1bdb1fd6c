package build_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/build/buildtest"
	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/hugorelease"
	"github.com/sitehost/sitehost/internal/hugorelease/releasetest"
)

// oldSite uses what Hugo v0.156.0 removed (resources.ToCSS) with LibSass,
// which only an extended Hugo has.
var oldSite = map[string]string{
	"assets/main.scss":   "$c: #c0ffee;\nnav { a { color: $c; } }\n",
	"layouts/home.html":  oldHome,
	"layouts/index.html": oldHome, // what releases before v0.146 look up first
}

const oldHome = `<h1>{{ .Title }}</h1>
{{ $css := resources.Get "main.scss" | resources.ToCSS }}<style>{{ $css.Content | safeCSS }}</style>
hugo=[{{ hugo.Version }}]`

func releaseStore(t *testing.T, m *releasetest.Mirror, dir string) *hugorelease.Store {
	t.Helper()
	s, err := hugorelease.New(hugorelease.Options{Releases: m.URL, Dir: dir,
		Versions: func(context.Context) ([]string, error) {
			return []string{"v0.155.2", "v0.155.3", "v0.165.0", "v0.164.0", "v0.100.0"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHugoRelease(t *testing.T) {
	exe := releasetest.Hugo(t, releasetest.OldHugo)
	mirror := releasetest.NewMirror(t, map[string]string{releasetest.OldHugo: exe})
	store := releaseStore(t, mirror, filepath.Join(t.TempDir(), "hugo"))
	b := newBuilder(t, build.Options{Releases: store})

	// The compiled-in Hugo no longer has resources.ToCSS.
	req := hugoRequest(t, copySite(t, oldSite))
	_, err := b.Build(context.Background(), req)
	if !build.IsUserError(err) || !strings.Contains(err.Error(), "ToCSS") {
		t.Fatalf("compiled-in hugo v%s: %v, want a user error about ToCSS", build.HugoVersion, err)
	}

	// The release the site asks for builds it, in the same sandbox.
	var log strings.Builder
	req = hugoRequest(t, copySite(t, oldSite))
	req.Settings.HugoVersion = releasetest.OldHugo
	req.Settings.Env = map[string]string{"HUGO_PARAMS_GREETING": "hello"}
	req.Log = &log
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("hugo v%s: %v\n%s", releasetest.OldHugo, err, res.Log)
	}
	html, err := os.ReadFile(filepath.Join(req.Out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<style>nav a {", "color: #c0ffee", "hugo=[" + releasetest.OldHugo + "]"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("index.html lacks %q:\n%s", want, html)
		}
	}
	if !strings.Contains(log.String(), "Fetched Hugo v"+releasetest.OldHugo) || !strings.Contains(log.String(), "verified against its checksums file") {
		t.Errorf("build log does not say which Hugo was fetched:\n%s", log.String())
	}
	if res.MaxRSS <= 0 {
		t.Errorf("no peak memory measured for the release's build")
	}

	// Once per version per machine: the second build fetches nothing.
	before := mirror.Requests()
	log.Reset()
	req = hugoRequest(t, copySite(t, oldSite))
	req.Settings.HugoVersion = "v" + releasetest.OldHugo
	req.Log = &log
	if res, err := b.Build(context.Background(), req); err != nil {
		t.Fatalf("second build: %v\n%s", err, res.Log)
	}
	if n := mirror.Requests() - before; n != 0 {
		t.Errorf("second build made %d requests to the mirror, want 0", n)
	}
	if !strings.Contains(log.String(), "fetched before") {
		t.Errorf("second build log: %s", log.String())
	}
}

// TestHugoReleaseSandbox: a fetched Hugo runs under the same locked policy
// as the compiled-in one: a site that widens getenv in its own config
// still cannot read HOME; module mounts, resourceDir and file caches
// outside the site are refused before the build; a broken config is the
// site's to fix, not a retry.
func TestHugoReleaseSandbox(t *testing.T) {
	exe := releasetest.Hugo(t, releasetest.OldHugo)
	store := releaseStore(t, releasetest.NewMirror(t, map[string]string{releasetest.OldHugo: exe}), filepath.Join(t.TempDir(), "hugo"))
	b := newBuilder(t, build.Options{Releases: store})
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("OUTSIDE-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	const home = `home=[{{ os.Getenv "HOME" }}]`
	imgSite := func(conf string) map[string]string {
		return map[string]string{
			"hugo.toml":          "title = 'Build test'\n" + conf,
			"assets/a.png":       string(buildtest.PNG(t, 4, 4, 1)),
			"layouts/home.html":  `{{ with resources.Get "a.png" }}{{ (.Resize "2x").RelPermalink }}{{ end }}`,
			"layouts/index.html": `{{ with resources.Get "a.png" }}{{ (.Resize "2x").RelPermalink }}{{ end }}`,
		}
	}
	for _, tt := range []struct {
		name, want string
		files      map[string]string
	}{
		{"getenv", "access denied", map[string]string{
			"hugo.toml":         "title = 'Build test'\n[security]\n[security.funcs]\ngetenv = ['.*']\n[security.exec]\nallow = ['.*']\n",
			"layouts/home.html": home, "layouts/index.html": home,
		}},
		{"mount", "is outside the site", map[string]string{
			"hugo.toml": "title = 'Build test'\n[[module.mounts]]\nsource = '" + outside + "'\ntarget = 'static/x'\n[[module.mounts]]\nsource = 'layouts'\ntarget = 'layouts'\n",
		}},
		{"resourceDir", `resourceDir "` + filepath.Join(outside, "res") + `" is outside the site`, imgSite("resourceDir = '" + filepath.Join(outside, "res") + "'\n")},
		{"image cache", `caches.images.dir "` + filepath.Join(outside, "img") + `" is outside the site`, imgSite("[caches.images]\ndir = '" + filepath.Join(outside, "img") + "'\n")},
		{"resource cache", "caches.getresource.dir", imgSite("[caches.getresource]\ndir = '" + outside + "/:project'\n")},
		{"missing theme", "not-there", map[string]string{"hugo.toml": "title = 'Build test'\ntheme = 'not-there'\n"}},
	} {
		for _, v := range []string{build.HugoVersion, releasetest.OldHugo} {
			t.Run(tt.name+"/"+v, func(t *testing.T) {
				req := hugoRequest(t, copySite(t, tt.files))
				req.Settings.HugoVersion = v
				res, err := b.Build(context.Background(), req)
				if !build.IsUserError(err) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want a user error with %q\n%s", err, tt.want, res.Log)
				}
				if f := findIn(t, req.Out, "OUTSIDE-SECRET"); f != "" {
					t.Errorf("outside file published as %s", f)
				}
				for _, d := range []string{"res", "img"} {
					if _, err := os.Stat(filepath.Join(outside, d)); err == nil {
						t.Errorf("the build wrote to %s outside the site", filepath.Join(outside, d))
					}
				}
			})
		}
	}
}

func findIn(t *testing.T, dir, needle string) string {
	t.Helper()
	var found string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(p); strings.Contains(string(data), needle) {
				found = p
			}
		}
		return nil
	})
	return found
}

func TestHugoReleaseRefused(t *testing.T) {
	exe := releasetest.Hugo(t, releasetest.OldHugo)
	for _, tt := range []struct {
		name, version string
		tamper        bool
		kind          fault.Kind
		want          []string
	}{
		{"tampered", releasetest.OldHugo, true, fault.KindTransient, []string{"refusing hugo v" + releasetest.OldHugo, "sha256", "checksums.txt says"}},
		{"unknown", "0.155.9", false, fault.KindStalled, []string{"hugo v0.155.9 does not exist", "0.155.3, 0.155.2", "0.165.0"}},
		{"too old", "0.100.0", false, fault.KindStalled, []string{"older than v" + hugorelease.MinVersion}},
		{"malformed", "latest", false, fault.KindStalled, []string{`"latest": want a release number`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mirror := releasetest.NewMirror(t, map[string]string{releasetest.OldHugo: exe})
			if tt.tamper {
				mirror.Tamper(t, releasetest.OldHugo, exe)
			}
			dir := filepath.Join(t.TempDir(), "hugo")
			b := newBuilder(t, build.Options{Releases: releaseStore(t, mirror, dir)})
			req := hugoRequest(t, copySite(t, nil))
			req.Settings.HugoVersion = tt.version
			_, err := b.Build(context.Background(), req)
			if err == nil {
				t.Fatal("built")
			}
			if k := fault.KindOf(err); k != tt.kind {
				t.Errorf("kind %s, want %s: %v", k, tt.kind, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("a refused release left %v in the cache", entries)
			}
		})
	}
	// No releases configured: the version is refused, saying why.
	b := newBuilder(t, build.Options{})
	req := hugoRequest(t, copySite(t, nil))
	req.Settings.HugoVersion = releasetest.OldHugo
	if _, err := b.Build(context.Background(), req); !build.IsUserError(err) || !strings.Contains(err.Error(), "compiled-in") {
		t.Errorf("no releases: %v", err)
	}
}

// TestHugoReleaseDartSass: transpiler dartsass works with a fetched Hugo
// as with the compiled-in one, through the same sass shim; without Dart
// Sass the error says how to enable it.
func TestHugoReleaseDartSass(t *testing.T) {
	exe := releasetest.Hugo(t, releasetest.OldHugo)
	store := releaseStore(t, releasetest.NewMirror(t, map[string]string{releasetest.OldHugo: exe}), filepath.Join(t.TempDir(), "hugo"))
	// toCSS with options: the spelling both releases know.
	home := `{{ $css := resources.Get "main.scss" | toCSS (dict "transpiler" "dartsass" "targetPath" "main.css") }}<link rel=stylesheet href="{{ $css.RelPermalink }}">`
	site := map[string]string{
		"assets/main.scss":   "@use \"sass:math\";\n.box { width: math.div(10px, 2); }\n",
		"layouts/home.html":  home,
		"layouts/index.html": home,
	}

	req := hugoRequest(t, copySite(t, site))
	req.Settings.HugoVersion = releasetest.OldHugo
	_, err := newBuilder(t, build.Options{Releases: store}).Build(context.Background(), req)
	if !build.IsUserError(err) || !strings.Contains(err.Error(), "transpiler dartsass") {
		t.Errorf("without Dart Sass: %v, want a user error saying how to enable it", err)
	}

	sass, _, err := build.FindDartSass(context.Background(), dartSass(t), "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	req = hugoRequest(t, copySite(t, site))
	req.Settings.HugoVersion = releasetest.OldHugo
	res, err := newBuilder(t, build.Options{Releases: store, DartSass: sass}).Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	css, err := os.ReadFile(filepath.Join(req.Out, "main.css"))
	if err != nil || !strings.Contains(string(css), "width: 5px") {
		t.Errorf("main.css = %q, %v; want math.div(10px, 2) as 5px", css, err)
	}
}
