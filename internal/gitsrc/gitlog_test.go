package gitsrc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logFixture builds a history that exercises what git log prints: a
// multi-paragraph root commit, raw (uncleaned) messages, an empty commit,
// mode and type changes, deletions, a directory replaced by a file,
// unusual file names, a gitlink, .mailmap, time zones, equal and skewed
// commit dates, and --no-ff merges, one of which is TREESAME under sub/
// to its second parent only.
func logFixture(t *testing.T) *fixture {
	f := newFixture(t)
	verbatim := "--cleanup=verbatim"
	f.write(".mailmap", "Ada Lovelace <ada@example.com>\n<cy@new.example> <cy@example.com>\n"+
		"Bob Proper <bob@proper> Bob Typo <BOB@typo>\n# comment\n")
	f.write("README.md", "r")
	f.write("sub/a.md", "a")
	f.write("sub/deep/b.md", "b")
	f.commit("Root commit\n\nBody line 1\nline 2\n\n\nsecond paragraph\n")
	f.zone = "-0130"
	f.write("sub/a.md", "a2")
	f.commit("\n\nEdit a\ncontinued subject   \n \n\n  indented body\r\n", verbatim)
	f.write("README.md", "r2")
	f.commit("root only\r\n\r\nCRLF body\r\n", verbatim, "--date=1700000000 +0530")
	f.commit("empty")
	f.zone = "+1400"
	chmod(t, filepath.Join(f.dir, "sub/deep/b.md"), 0o755)
	f.commit("chmod")
	f.write("sub/héllo wörld.md", "u")
	f.write("sub/quo\"te\\.md", "q")
	f.write("sub/tab\there.md", "t")
	f.write("sub/x/y.md", "y")
	f.commit("weird names")
	remove(t, filepath.Join(f.dir, "sub/deep"))
	remove(t, filepath.Join(f.dir, "sub/x"))
	f.write("sub/x", "now a file")
	remove(t, filepath.Join(f.dir, "sub/a.md"))
	if err := os.Symlink("x", filepath.Join(f.dir, "sub/a.md")); err != nil {
		t.Fatal(err)
	}
	f.commit("delete, dir to file, file to symlink")
	f.zone = "+0000"

	f.git("checkout", "-q", "-b", "feature")
	f.write("sub/feature.md", "f")
	f.commit("feature work", "--author=Bob Typo <BOB@typo>")
	f.write("other.txt", "o")
	f.write("sub/same.md", "same")
	f.commit("feature same")
	f.git("checkout", "-q", "main")
	f.write("sub/same.md", "same")
	f.commit("main same")
	f.write("main.txt", "m")
	f.commit("main root only")
	f.clock = f.clock.Add(time.Hour)
	f.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")

	// Equal commit dates on both sides of a merge.
	f.git("checkout", "-q", "-b", "tie")
	f.write("sub/tie-branch.md", "t")
	f.commit("tie on branch")
	f.git("checkout", "-q", "main")
	f.clock = f.clock.Add(-time.Hour)
	f.write("sub/tie-main.md", "t")
	f.commit("tie on main")
	// A branch commit dated before its parent (clock skew).
	f.git("checkout", "-q", "-b", "skew")
	f.clock = f.clock.Add(-30 * time.Hour)
	f.write("sub/skew.md", "s")
	f.commit("skewed")
	f.clock = f.clock.Add(30 * time.Hour)
	f.git("checkout", "-q", "main")
	f.clock = f.clock.Add(time.Hour)
	f.git("merge", "-q", "--no-ff", "-m", "Merge tie", "tie")
	f.clock = f.clock.Add(time.Hour)
	f.git("merge", "-q", "--no-ff", "-m", "Merge skew", "skew")

	f.git("update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("2", 40)+",sub/mod")
	f.commitIndex("add submodule")
	return f
}

func gitLogArgs(rev string) []string {
	return gitLogArgsFormat(rev, GitLogFormat)
}

func gitLogArgsFormat(rev, format string) []string {
	return []string{"-c", "diff.renames=0", "-c", "log.showSignature=0", "log", "--name-only", "--no-merges", format, rev}
}

func TestWriteGitLog(t *testing.T) {
	f := logFixture(t)
	cache := filepath.Join(t.TempDir(), "cache")
	r := f.open(Options{Dir: cache})
	head := mustFetch(t, r, "main")

	for _, tc := range []struct {
		format, prefix string
	}{
		{GitLogFormat, ""}, {GitLogFormat, "."}, {GitLogFormat, "sub"}, {GitLogFormat, "sub/"}, {GitLogFormat, "sub/deep"}, {GitLogFormat, "nope"},
		{GitLogFormatNoBody, ""}, {GitLogFormatNoBody, "sub"}, {GitLogFormatNoBody, "nope"},
	} {
		prefix := tc.prefix
		t.Run(tc.format[len(tc.format)-4:]+"/"+prefix, func(t *testing.T) {
			args := gitLogArgsFormat("main", tc.format)
			p := strings.Trim(prefix, "./")
			if p != "" {
				args = append(args, "--", p+"/")
			}
			want := f.gitRaw(args...)
			if p != "" {
				want = bytes.ReplaceAll(want, []byte("\n"+p+"/"), []byte("\n"))
				want = bytes.ReplaceAll(want, []byte("\n\""+p+"/"), []byte("\n\""))
			}
			var got bytes.Buffer
			if err := writeGitLog(&got, cache, head, prefix, tc.format == GitLogFormat); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("WriteGitLog differs from git log at byte %d\n got: %q\nwant: %q",
					firstDiff(got.Bytes(), want), got.String(), want)
			}
		})
	}
}

func TestWriteGitLogErrors(t *testing.T) {
	f := newFixture(t)
	f.write("a", "a")
	c := f.commit("a")
	cache := filepath.Join(t.TempDir(), "cache")
	r := f.open(Options{Dir: cache})
	mustFetch(t, r, "main")
	var buf bytes.Buffer
	if err := WriteGitLog(&buf, cache, c, "../x"); err == nil {
		t.Error("prefix ../x accepted")
	}
	if err := WriteGitLog(&buf, cache, "0123456789012345678901234567890123456789", ""); err == nil {
		t.Error("unknown commit accepted")
	}
	if err := WriteGitLog(&buf, filepath.Join(t.TempDir(), "none"), c, ""); err == nil {
		t.Error("missing git dir accepted")
	}
}

func TestParseMessageAndMailmap(t *testing.T) {
	for msg, want := range map[string][2]string{
		"":                         {"", ""},
		"one":                      {"one", ""},
		"one\ntwo \n\n\n body\n":   {"one two", " body\n"},
		" \n\t\nsubj\r\n\r\nb\r\n": {"subj", "b\r\n"},
	} {
		if s, b := splitMessage(msg); s != want[0] || b != want[1] {
			t.Errorf("splitMessage(%q) = %q, %q; want %q", msg, s, b, want)
		}
	}
	m := parseMailmap("A <a@x>\n<new@x> <OLD@x>\nN <n@x> O <o@x>\nS <o@x>\n<> <empty>\n#C <c@x>\n")
	for in, want := range map[[2]string][2]string{
		{"a", "A@X"}:   {"A", "A@X"},
		{"o", "old@X"}: {"o", "new@x"},
		{"o", "O@x"}:   {"N", "n@x"},
		{"p", "o@x"}:   {"S", "o@x"},
		{"c", "c@x"}:   {"c", "c@x"},
	} {
		if n, e := m.lookup(in[0], in[1]); n != want[0] || e != want[1] {
			t.Errorf("mailmap lookup %v = %q %q; want %v", in, n, e, want)
		}
	}
}

func TestQuotePath(t *testing.T) {
	for in, want := range map[string]string{
		"plain/a b.md":       "plain/a b.md",
		"é":                  `"\303\251"`,
		"a\"b\\c\td\x01\x7f": `"a\"b\\c\td\001\177"`,
	} {
		if got := quotePath(in); got != want {
			t.Errorf("quotePath(%q) = %s, want %s", in, got, want)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}
