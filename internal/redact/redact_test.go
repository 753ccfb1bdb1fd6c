package redact

import "testing"

func TestCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:ghp_secret@github.com/acme/blog.git":           "https://***@github.com/acme/blog.git",
		"fetching https://oauth2:glpat-x@gitlab.com/a/b.git: denied": "fetching https://***@gitlab.com/a/b.git: denied",
		"git@github.com:acme/blog.git":                               "git@github.com:acme/blog.git", // scp form: no secret
		"ssh://git@host:22/repo.git":                                 "ssh://***@host:22/repo.git",
		"no url here":                                                "no url here",
	} {
		if got := Credentials(in); got != want {
			t.Errorf("Credentials(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"page=2&sort=asc":           "page=2&sort=asc",
		"token=abc&page=2":          "token=***&page=2",
		"page=2&Access_Token=abc":   "page=2&Access_Token=***",
		"X-Amz-Signature=f00&a=1":   "X-Amz-Signature=***&a=1",
		"github_token=x&mykey=y":    "github_token=***&mykey=y",
		"api%5Fkey=s":               "api%5Fkey=***",
		"stripe-secret=s&flag":      "stripe-secret=***&flag",
		"db_password=hunter2":       "db_password=***",
		"code=oauth-code&state=xyz": "code=***&state=xyz",
		"accessToken=a&clientSecret=b&refreshToken=c&apiKey=d&page=2": "accessToken=***&clientSecret=***&refreshToken=***&apiKey=***&page=2",
		"monkey=1&keyboard=2&tokens_left=3":                           "monkey=1&keyboard=2&tokens_left=3",
	} {
		if got := Query(in); got != want {
			t.Errorf("Query(%q) = %q, want %q", in, got, want)
		}
	}
	if got := URI("/login", "next=/&token=t"); got != "/login?next=/&token=***" {
		t.Errorf("URI = %q", got)
	}
}

func BenchmarkQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Query("utm_source=news&utm_medium=email&page=2")
	}
}
