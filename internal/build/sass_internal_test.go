package build

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSecurityExecAllow(t *testing.T) {
	for _, tt := range []struct {
		git   bool
		tools []string
		want  []string
	}{
		{false, nil, []string{"none"}},
		{true, nil, []string{"^git$"}},
		{false, []string{"sass"}, []string{"^sass$"}},
		{true, []string{"sass"}, []string{"^git$", "^sass$"}},
		{true, []string{"node", "postcss"}, []string{"^git$", "^node$", "^postcss$"}},
	} {
		js, err := securityJSON(HugoVersion, Settings{}, tt.git, tt.tools)
		if err != nil {
			t.Fatal(err)
		}
		var sec struct {
			Exec struct{ Allow []string } `json:"exec"`
		}
		if err := json.Unmarshal([]byte(js), &sec); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sec.Exec.Allow, tt.want) {
			t.Errorf("git %v, tools %q: exec.allow %q, want %q", tt.git, tt.tools, sec.Exec.Allow, tt.want)
		}
	}
}

// TestSassArgv: the launcher script of a standalone Dart Sass (which
// needs dirname on PATH) is replaced by its VM and snapshot, also through
// a symlink; anything else runs as it is.
func TestSassArgv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	script := write("dart-sass/sass", "#!/bin/sh\nexec \"$path/src/dart\" \"$path/src/sass.snapshot\" \"$@\"\n", 0o755)
	vm := write("dart-sass/src/dart", "\x7fELF", 0o755)
	snapshot := write("dart-sass/src/sass.snapshot", "snapshot", 0o644)
	native := write("native/sass", "\x7fELF", 0o755)
	write("native/src/dart", "\x7fELF", 0o755) // not a script: left alone
	write("native/src/sass.snapshot", "snapshot", 0o644)
	noSnapshot := write("other/sass", "#!/bin/sh\n", 0o755)
	write("other/src/dart", "\x7fELF", 0o755)
	link := filepath.Join(dir, "bin", "sass")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(script, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p    string
		want []string
	}{
		{script, []string{vm, snapshot}},
		{link, []string{vm, snapshot}},
		{native, []string{native}},
		{noSnapshot, []string{noSnapshot}},
		{filepath.Join(dir, "missing"), []string{filepath.Join(dir, "missing")}},
	} {
		if got := sassArgv(tt.p); !slices.Equal(got, tt.want) {
			t.Errorf("sassArgv(%s) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
