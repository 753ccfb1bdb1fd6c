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
