package site

import (
	"errors"
	"testing"
)

func TestNameValid(t *testing.T) {
	for name, ok := range map[Name]bool{
		"blog": true, "my-blog-2": true, "a": true, "0docs": true,
		"": false, "Blog": false, "-blog": false, "blog-": false, "my--blog": false,
		"my_blog": false, "blog.example": false, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": false,
	} {
		err := name.Valid()
		if (err == nil) != ok {
			t.Errorf("Name(%q).Valid() = %v, want ok=%v", name, err, ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("Name(%q).Valid() = %v, not ErrBadName", name, err)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"main": "main", "Feature/Login": "feature-login", "fix--double": "fix-double",
		"-lead_and_trail-": "lead-and-trail", "ünïcode": "n-code", "release/v1.2": "release-v1-2",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChannels(t *testing.T) {
	for c, ok := range map[Channel]bool{
		Production: true, PullRequest(7): true, Branch("Feature/X"): true,
		"pr-0": false, "pr-07": false, "branch-": false, "staging": false,
	} {
		if c.Valid() != ok {
			t.Errorf("Channel(%q).Valid() = %v, want %v", c, c.Valid(), ok)
		}
	}
	if Branch("Feature/X") != "branch-feature-x" {
		t.Errorf("Branch slug: %q", Branch("Feature/X"))
	}
}

func TestChannelKind(t *testing.T) {
	tests := []struct {
		c      Channel
		kind   ChannelKind
		pr     int
		branch string
	}{
		{Production, KindProduction, 0, ""},
		{PullRequest(7), KindPullRequest, 7, ""},
		{PullRequest(1234), KindPullRequest, 1234, ""},
		{Branch("Feature/X"), KindBranch, 0, "feature-x"},
		{"branch-pr-3", KindBranch, 0, "pr-3"},
		{"pr-07", "", 0, ""},
		{"staging", "", 0, ""},
		{"", "", 0, ""},
	}
	for _, tt := range tests {
		if got := tt.c.Kind(); got != tt.kind {
			t.Errorf("Channel(%q).Kind() = %q, want %q", tt.c, got, tt.kind)
		}
		n, ok := tt.c.PullRequest()
		if n != tt.pr || ok != (tt.pr > 0) {
			t.Errorf("Channel(%q).PullRequest() = %d, %v; want %d", tt.c, n, ok, tt.pr)
		}
		slug, ok := tt.c.BranchSlug()
		if slug != tt.branch || ok != (tt.branch != "") {
			t.Errorf("Channel(%q).BranchSlug() = %q, %v; want %q", tt.c, slug, ok, tt.branch)
		}
	}
}

func TestHostname(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM":   "example.com",
		"example.com.":  "example.com",
		" example.com ": "example.com",
		"a.b:8080":      "a.b:8080",
		"":              "",
	} {
		if got := Hostname(in); got != want {
			t.Errorf("Hostname(%q) = %q, want %q", in, got, want)
		}
	}
}
