package forge

import (
	"errors"
	"testing"
)

func TestRepoURLs(t *testing.T) {
	tests := []struct {
		kind, repo        string
		wantName, wantAPI string
	}{
		{"github", "https://github.com/acme/blog", "acme/blog", "https://api.github.com"},
		{"github", "https://github.com/acme/blog.git", "acme/blog", "https://api.github.com"},
		{"github", "https://github.com/acme/blog.git/", "acme/blog", "https://api.github.com"},
		{"github", "https://x-access-token:abc@github.com/acme/blog.git", "acme/blog", "https://api.github.com"},
		{"github", "ssh://git@github.com/acme/blog.git", "acme/blog", "https://api.github.com"},
		{"github", "ssh://git@github.com:22/acme/blog.git", "acme/blog", "https://api.github.com"},
		{"github", "git@github.com:acme/blog.git", "acme/blog", "https://api.github.com"},
		{"github", "github.com:acme/blog", "acme/blog", "https://api.github.com"},
		{"github", "https://GitHub.example.com/Acme/Blog.git", "Acme/Blog", "https://github.example.com/api/v3"},
		{"gitlab", "https://gitlab.com/acme/blog.git", "acme/blog", "https://gitlab.com/api/v4"},
		{"gitlab", "https://gitlab.com/acme/sub/blog.git", "acme/sub/blog", "https://gitlab.com/api/v4"},
		{"gitlab", "git@gitlab.com:acme/sub/deeper/blog.git", "acme/sub/deeper/blog", "https://gitlab.com/api/v4"},
		{"gitlab", "ssh://git@gitlab.example.com:2222/acme/sub/blog.git", "acme/sub/blog", "https://gitlab.example.com/api/v4"},
		{"gitea", "https://gitea.example.com/acme/blog.git", "acme/blog", "https://gitea.example.com/api/v1"},
		{"gitea", "http://localhost:3000/acme/blog.git", "acme/blog", "http://localhost:3000/api/v1"},
		{"gitea", "https://example.com/git/acme/blog", "acme/blog", "https://example.com/git/api/v1"},
		{"forgejo", "git@codeberg.org:acme/blog.git", "acme/blog", "https://codeberg.org/api/v1"},
		{"forgejo", "ssh://git@codeberg.org:2222/acme/blog.git", "acme/blog", "https://codeberg.org/api/v1"},
		{"bitbucket", "https://bitbucket.org/acme-ws/blog-slug.git", "acme-ws/blog-slug", "https://api.bitbucket.org/2.0"},
		{"bitbucket", "https://jdoe@bitbucket.org/acme-ws/blog-slug.git", "acme-ws/blog-slug", "https://api.bitbucket.org/2.0"},
		{"bitbucket", "git@bitbucket.org:acme-ws/blog-slug.git", "acme-ws/blog-slug", "https://api.bitbucket.org/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.repo, func(t *testing.T) {
			c, err := New(Config{Kind: tt.kind, Token: "t", Repo: tt.repo}, nil)
			if err != nil {
				t.Fatal(err)
			}
			cl := c.(*client)
			if cl.t.name != tt.wantName {
				t.Errorf("repo = %q, want %q", cl.t.name, tt.wantName)
			}
			if cl.api != tt.wantAPI {
				t.Errorf("api = %q, want %q", cl.api, tt.wantAPI)
			}
		})
	}
}

func TestExplicitAPIWins(t *testing.T) {
	c, err := New(Config{Kind: "gitea", API: "https://git.example.com/api/v1/", Token: "t", Repo: "git@git.example.com:acme/blog.git"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.(*client).api; got != "https://git.example.com/api/v1" {
		t.Errorf("api = %q", got)
	}
}

func TestBadRepoURLs(t *testing.T) {
	for _, repo := range []string{
		"", "blog", "./blog", "/srv/git/acme/blog.git", "file:///srv/git/acme/blog.git",
		"https://github.com", "https://github.com/acme", "git@github.com:blog.git", "https:///acme/blog",
		"https://github.com/acme//blog", "ftp://github.com/acme/blog",
	} {
		if _, err := parseRepo(repo); !errors.Is(err, ErrBadRepo) {
			t.Errorf("parseRepo(%q) = %v, want ErrBadRepo", repo, err)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	for attempt := 1; attempt <= 10; attempt++ {
		d := defaultBackoff(attempt)
		if d < 1e9 || d > 30e9 {
			t.Errorf("defaultBackoff(%d) = %v, want within 1s..30s", attempt, d)
		}
	}
	if d := defaultBackoff(3); d < 4e9 || d > 5e9 {
		t.Errorf("defaultBackoff(3) = %v, want 4s plus up to 25%%", d)
	}
}
