package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// runCmd runs the program with args and no environment.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	err = run(context.Background(), args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// wantExitError checks that err is non-nil and an exitError, so main does
// not print it a second time.
func wantExitError(t *testing.T, err error) {
	t.Helper()
	var ee exitError
	if err == nil {
		t.Fatal("run succeeded, want an error")
	}
	if !errors.As(err, &ee) {
		t.Errorf("error %v (%T) is not an exitError: main would print it again", err, err)
	}
}

func TestValidate(t *testing.T) {
	t.Run("repository config", func(t *testing.T) {
		path := filepath.Join("..", "..", "sites.yaml")
		stdout, stderr, err := runCmd(t, "validate", "-c", path)
		if err != nil {
			t.Fatalf("validate: %v\nstderr:\n%s", err, stderr)
		}
		if want := path + ": ok (2 sites)\n"; stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
		if stderr != "" {
			t.Errorf("stderr = %q, want nothing", stderr)
		}
	})

	t.Run("broken config", func(t *testing.T) {
		path := "testdata/validate/broken.yaml"
		stdout, stderr, err := runCmd(t, "validate", "-c", path)
		wantExitError(t, err)
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
		golden(t, "testdata/validate/broken.golden", stderr)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, path+":") {
				t.Errorf("problem %q does not start with %q", l, path+":")
			}
		}
		if last, want := lines[len(lines)-1], fmt.Sprintf("%d problems", len(lines)-1); last != want {
			t.Errorf("last line = %q, want %q", last, want)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		stdout, stderr, err := runCmd(t, "validate", "-c", path)
		wantExitError(t, err)
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if !strings.Contains(stderr, path) {
			t.Errorf("stderr %q does not name %s", stderr, path)
		}
	})

	t.Run("bad flag", func(t *testing.T) {
		_, stderr, err := runCmd(t, "validate", "-nope")
		wantExitError(t, err)
		if !strings.Contains(stderr, "-nope") || !strings.Contains(stderr, "-c") {
			t.Errorf("stderr = %q, want the bad flag and the flag list", stderr)
		}
	})
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantErr    bool
		wantStdout bool // usage on stdout rather than stderr
	}{
		{name: "no args", wantErr: true},
		{name: "help", args: []string{"help"}, wantStdout: true},
		{name: "-h", args: []string{"-h"}, wantStdout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runCmd(t, tt.args...)
			if tt.wantErr {
				wantExitError(t, err)
			} else if err != nil {
				t.Fatalf("run: %v", err)
			}
			got, other := stderr, stdout
			if tt.wantStdout {
				got, other = stdout, stderr
			}
			if got != usage {
				t.Errorf("got %q, want the usage", got)
			}
			if other != "" {
				t.Errorf("other stream = %q, want nothing", other)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	stdout, stderr, err := runCmd(t, "frobnicate")
	wantExitError(t, err)
	if !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("error = %q, want it to name the command", err)
	}
	if want := "sitehost: unknown command \"frobnicate\"\n\n" + usage; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v"} {
		t.Run(arg, func(t *testing.T) {
			stdout, stderr, err := runCmd(t, arg)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !strings.HasPrefix(stdout, "sitehost ") || !strings.Contains(stdout, "hugo 0.165.0") ||
				strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
				t.Errorf("stdout = %q, want one line \"sitehost <version> (hugo 0.165.0)\"", stdout)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
		})
	}
}

// testName is the top-level test's name, for -run.
func testName(t *testing.T) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return name
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, testName(t))
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it)\n--- got\n%s--- want\n%s", path, testName(t), got, want)
	}
}

// TestValidateDartSass: server.build.dart_sass must name an executable
// file, relative paths taken against the config's folder; validate says
// where it is wrong (startup and reload run the same check, compile).
func TestValidateDartSass(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"sass": 0o755, "notexec": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		value, want string
	}{
		{"./sass", ""},
		{filepath.Join(dir, "sass"), ""},
		{"./nope", "no such file"},
		{"./notexec", "is not executable"},
		{".", "is not a regular file"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			path := filepath.Join(dir, "sites.yaml")
			doc := "server:\n  build:\n    dart_sass: " + tt.value + "\nsites: []\n"
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := runCmd(t, "validate", "-c", path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("validate: %v\n%s", err, stderr)
				}
				return
			}
			wantExitError(t, err)
			if prefix := path + ":3: server.build.dart_sass: cannot run Dart Sass"; !strings.HasPrefix(stderr, prefix) || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want %q… %q", stderr, prefix, tt.want)
			}
		})
	}
}

// TestSyntaxErrorLineEverywhere: validate, startup and reload name the
// same line for a YAML syntax error, the line that is wrong (yaml.v3 says
// line 3, where the list starts).
func TestSyntaxErrorLineEverywhere(t *testing.T) {
	const bad = "server:\n  http: \"127.0.0.1:0\"\nsites:\n  - name: blog\n    repo: https://github.com/acme/blog\n   ref: main\n"
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	want := path + ":6: yaml: did not find expected '-' indicator"

	_, stderr, err := runCmd(t, "validate", "-c", path)
	if err == nil || !strings.Contains(stderr, want+"\n") {
		t.Errorf("validate: %v\n%s\nwant %s", err, stderr, want)
	}
	_, stderr, err = runCmd(t, "serve", "-c", path)
	if err == nil || !strings.Contains(stderr, want+"\n") {
		t.Errorf("serve: %v\n%s\nwant %s", err, stderr, want)
	}
	ts := startServerUntil(t, testConfig(t, t.TempDir(), "  []\n"), nil, serverOptions{})
	t.Cleanup(func() { ts.stop(t) })
	if err := ts.reloadFile(t.Context(), path, []byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("reload: %v, want %s", err, want)
	}
	if !strings.Contains(ts.logs.String(), want) {
		t.Errorf("the reload's refusal does not log %s:\n%s", want, ts.logs)
	}
}
