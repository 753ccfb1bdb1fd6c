package gitsrc

import "testing"

func TestRewritesApply(t *testing.T) {
	rs := Rewrites{
		{From: "https://github.com/", To: "https://mirror.internal/github/"},
		{From: "https://github.com/acme/", To: "ssh://git@forge.internal/acme/"},
		{From: "git@github.com:", To: "https://mirror.internal/github/"},
	}
	for in, want := range map[string]string{
		"https://github.com/gohugoio/hugo.git":    "https://mirror.internal/github/gohugoio/hugo.git",
		"https://github.com/acme/site.git":        "ssh://git@forge.internal/acme/site.git", // the longest From wins
		"git@github.com:adityatelange/theme.git":  "https://mirror.internal/github/adityatelange/theme.git",
		"https://gitlab.com/x/y.git":              "https://gitlab.com/x/y.git",
		"https://github.com.evil.example/x/y.git": "https://github.com.evil.example/x/y.git",
	} {
		if got := rs.Apply(in); got != want {
			t.Errorf("Apply(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Rewrites(nil).Apply("https://x/y"); got != "https://x/y" {
		t.Errorf("no rules: %q", got)
	}
}
