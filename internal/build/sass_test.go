package build_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
)

// dartSass is the Dart Sass CI installs (.ci/run exports its path), skipped
// locally when it is not there.
func dartSass(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SITEHOST_DART_SASS")
	err := errors.New("SITEHOST_DART_SASS is not set")
	if p != "" {
		err = build.CheckExecutable(p)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI installs Dart Sass (.ci/run): %v", err)
		}
		t.Skipf("no Dart Sass (set SITEHOST_DART_SASS, as .ci/run does): %v", err)
	}
	return p
}

// dartSassSite uses what only Dart Sass has (the module system and
// math.div; LibSass knows neither), through css.Sass with options.
func dartSassSite(t *testing.T) string {
	return copySite(t, map[string]string{
		"assets/main.scss": "@use \"sass:math\";\n.box { width: math.div(10px, 2); }\n",
		"layouts/home.html": `{{ $css := resources.Get "main.scss" | css.Sass (dict "transpiler" "dartsass" "targetPath" "main.css") }}` +
			`<link rel=stylesheet href="{{ $css.RelPermalink }}">`,
	})
}

func TestDartSassBuild(t *testing.T) {
	sass, version, err := build.FindDartSass(context.Background(), dartSass(t), "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, build.Options{DartSass: sass, DartSassVersion: version})
	if want := "dart-sass " + version; version == "" || b.Toolchain() != want {
		t.Errorf("Toolchain() = %q, want %q", b.Toolchain(), want)
	}
	req := hugoRequest(t, dartSassSite(t))
	res, err := b.Build(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, res.Log)
	}
	css, err := os.ReadFile(filepath.Join(req.Out, "main.css"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(css), "width: 5px") {
		t.Errorf("main.css = %q, want math.div(10px, 2) as 5px", css)
	}
}

func TestDartSassMissingIsUserError(t *testing.T) {
	b := newBuilder(t, build.Options{})
	_, err := b.Build(context.Background(), hugoRequest(t, dartSassSite(t)))
	if !build.IsUserError(err) {
		t.Fatalf("want a user error, got %v", err)
	}
	for _, want := range []string{"transpiler dartsass", "server.build.dart_sass", "sass-embedded-linux-x64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "-tags extended") {
		t.Errorf("error %q gives the LibSass hint for a Dart Sass site", err)
	}
}

// TestDartSassAllowsNothingElse: with Dart Sass on, the child may run
// "sass" and still nothing else: Babel (another tool Hugo runs) is refused
// by security.exec.allow before Hugo looks for it. The path need not exist
// for that.
func TestDartSassAllowsNothingElse(t *testing.T) {
	b := newBuilder(t, build.Options{DartSass: "/nonexistent/sass"})
	src := copySite(t, map[string]string{
		"assets/main.js":    "let a = 1;\n",
		"layouts/home.html": `{{ $js := resources.Get "main.js" | js.Babel }}{{ $js.RelPermalink }}`,
	})
	_, err := b.Build(context.Background(), hugoRequest(t, src))
	if !build.IsUserError(err) || !strings.Contains(err.Error(), `"babel" is not whitelisted in policy "security.exec.allow"`) {
		t.Fatalf("want babel refused by security.exec.allow, got %v", err)
	}
}

func TestSassHint(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want bool
	}{
		// Hugo 0.165's text, from the child's error or a fetched Hugo's output.
		{`error calling Sass: TOCSS-DART: failed to transform "/main.scss" (text/x-scss). You need to install Dart Sass, see https://gohugo.io//functions/css/sass/#dart-sass: this feature is not available in your current Hugo version`, true},
		{`error calling toCSS: TOCSS: failed to transform "main.scss" (text/x-scss). Check your Hugo installation; you need the extended version to build SCSS/SASS with transpiler set to 'libsass'.: this feature is not available`, false},
		{`template: home.html:1: function "nope" not defined`, false},
	} {
		if got := build.SassHint(tt.msg) != ""; got != tt.want {
			t.Errorf("SassHint(%q) given: %v, want %v", tt.msg, got, tt.want)
		}
	}
}

// writeExe writes an executable file.
func writeExe(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// An old Ruby or JavaScript sass answers --embedded with an error.
const oldSass = "#!/bin/sh\necho 'Could not find an option named \"embedded\".' >&2\nexit 64\n"

func TestFindDartSass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := filepath.Join(dir, "old", "sass")
	writeExe(t, old, oldSass)
	writeExe(t, filepath.Join(dir, "plain", "sass"), "not executable by anyone\n")
	if err := os.Chmod(filepath.Join(dir, "plain", "sass"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("old sass on PATH is passed over", func(t *testing.T) {
		var logs bytes.Buffer
		got, _, err := build.FindDartSass(ctx, "", filepath.Join(dir, "plain")+":"+filepath.Join(dir, "old"), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil || got != "" {
			t.Fatalf("got %q, %v; want none", got, err)
		}
		if !strings.Contains(logs.String(), old) || !strings.Contains(logs.String(), "--embedded") {
			t.Errorf("the log does not say why %s was not taken: %s", old, logs.String())
		}
	})
	t.Run("configured old sass is an error", func(t *testing.T) {
		_, _, err := build.FindDartSass(ctx, old, "", slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "server.build.dart_sass") || !strings.Contains(err.Error(), "Could not find an option") {
			t.Fatalf("got %v, want an error naming the setting and what sass said", err)
		}
	})
	t.Run("nothing on PATH", func(t *testing.T) {
		if got, _, err := build.FindDartSass(ctx, "", t.TempDir(), slog.New(slog.DiscardHandler)); err != nil || got != "" {
			t.Fatalf("got %q, %v; want none", got, err)
		}
	})
	t.Run("real Dart Sass on PATH", func(t *testing.T) {
		real := dartSass(t)
		// Named sass in a PATH dir, behind a symlink as a package manager
		// would install it.
		bin := t.TempDir()
		if err := os.Symlink(real, filepath.Join(bin, "sass")); err != nil {
			t.Fatal(err)
		}
		got, version, err := build.FindDartSass(ctx, "", filepath.Join(dir, "old")+":"+bin, slog.New(slog.DiscardHandler))
		if err != nil || got != filepath.Join(bin, "sass") {
			t.Fatalf("got %q, %v; want %s", got, err, filepath.Join(bin, "sass"))
		}
		if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(version) {
			t.Errorf("version %q, want Dart Sass's compiler version", version)
		}
	})
}
