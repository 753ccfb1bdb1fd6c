package build

import (
	"bytes"
	"strings"
	"testing"
)

// Older releases print warnings on stdout, among the JSON of `hugo config`.
func TestSplitJSON(t *testing.T) {
	out := "WARN 2024/01/01 00:00:00 a theme asks for a newer Hugo\n" +
		"{\n  \"path\": \"project\",\n  \"dir\": \"/src/\",\n  \"mounts\": [\n    {\n      \"source\": \"content\"\n    }\n  ]\n}\n" +
		"INFO noise\n" +
		"{\"path\":\"theme\",\"dir\":\"/src/themes/t/\"}\n" +
		"{\n  \"path\": \"x\"\n}\n"
	js, rest := splitJSON([]byte(out))
	if got := string(rest); got != "WARN 2024/01/01 00:00:00 a theme asks for a newer Hugo\nINFO noise\n" {
		t.Errorf("rest = %q", got)
	}
	problems, err := mountProblems(js, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// All three objects read: both modules with a dir, and the mount,
	// are outside this temp dir (/src/...).
	if len(problems) != 3 {
		t.Errorf("problems = %v, want the two modules in /src and the mount", problems)
	}
	if p, _ := mountProblems([]byte("{\"dir\": \"/src\"\n"), t.TempDir()); len(p) != 1 || !strings.Contains(p[0].Message, "reading hugo config mounts") {
		t.Errorf("cut JSON: %v, want a problem", p)
	}
}

func TestLimitedSaysWhenItDrops(t *testing.T) {
	var buf bytes.Buffer
	l := &limited{w: &buf, n: 5}
	l.Write([]byte("abc")) //nolint:errcheck // never fails
	if l.dropped {
		t.Error("dropped before the limit")
	}
	l.Write([]byte("defg")) //nolint:errcheck // never fails
	if !l.dropped || buf.String() != "abcde" {
		t.Errorf("dropped=%v kept %q", l.dropped, buf.String())
	}
}

// A release that lets the site's [security] win is refused, whatever its
// version says: here what v0.112.1 printed for a site with getenv = ['.*'].
func TestPolicyProblems(t *testing.T) {
	sec, err := securityJSON("0.123.4", Settings{Env: map[string]string{"FOO": "x"}}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/bin", "HUGO_SECURITY=" + sec}
	applied := `{"title":"x","security":{"exec":{"allow":["^git$"],"osenv":["^(HOME|TMPDIR)$","^SITEHOST_GIT_(DIR|COMMIT|PREFIX)$"]},"funcs":{"getenv":["^HUGO_","^FOO$"]},"gotemplates":{},"http":{"mediatypes":"none","methods":"none","urls":"none"}}}`
	if p := policyProblems([]byte(applied), env, "0.123.4"); len(p) != 0 {
		t.Errorf("applied policy: %v", p)
	}
	ignored := `{"security":{"exec":{"allow":["^dart-sass-embedded$","^go$","^npx$","^postcss$"],"osenv":["(?i)^((HTTPS?|NO)_PROXY|PATH(EXT)?|APPDATA|TE?MP|TERM|GO\\w+)$"]},"funcs":{"getenv":[".*"]},"http":{"methods":["(?i)GET|POST"],"urls":[".*"]}}}`
	p := policyProblems([]byte(ignored), env, "0.112.1")
	if len(p) != 5 || !strings.Contains(p[2].Message, `security.funcs.getenv is [".*"]`) {
		t.Errorf("ignored policy: %v", p)
	}
}
