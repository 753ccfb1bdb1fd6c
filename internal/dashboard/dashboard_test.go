package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/site"
)

const wantCSP = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestHandler(src Source) (*Handler, *clock) {
	c := &clock{t: now}
	return New(Options{Source: src, Token: testToken, Now: c.Now}), c
}

// response is one answer of the handler.
type response struct {
	*http.Response
	body string
}

func serve(t *testing.T, h http.Handler, r *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Response: res, body: string(b)}
}

func get(t *testing.T, h http.Handler, target string, cookie *http.Cookie) response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return serve(t, h, r)
}

func postForm(t *testing.T, h http.Handler, target string, form url.Values, cookie *http.Cookie) response {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return serve(t, h, r)
}

// login logs in with the right token and returns the session cookie.
func login(t *testing.T, h http.Handler) *http.Cookie {
	t.Helper()
	res := postForm(t, h, "/login", url.Values{"token": {testToken}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d, want 303; body:\n%s", res.StatusCode, res.body)
	}
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("%s does not contain %q", what, want)
		}
	}
}

func mustNotContain(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("%s contains %q", what, u)
		}
	}
}

// pages fetches every page of the fake with a session.
func pages(t *testing.T, h http.Handler, c *http.Cookie) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, target := range []string{"/", "/sites/blog", "/sites/docs", "/sites/blog?sync=requested", "/nope"} {
		out[target] = get(t, h, target, c).body
	}
	for _, id := range []site.DeployID{liveID, prID, readyID, failedID, buildingID} {
		target := "/sites/blog/deploys/" + string(id)
		out[target] = get(t, h, target, c).body
	}
	out["/sites/docs/deploys/"+string(docsFailID)] = get(t, h, "/sites/docs/deploys/"+string(docsFailID), c).body
	out["login (no session)"] = get(t, h, "/login", nil).body
	return out
}

func TestSecurityHeaders(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	c := login(t, h)
	for _, target := range []string{"/", "/sites/blog", "/sites/blog/deploys/" + string(liveID), "/nope", "/login"} {
		res := get(t, h, target, c)
		if target == "/login" {
			res = get(t, h, target, nil)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": wantCSP,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
			"Cache-Control":           "no-store",
			"Content-Type":            "text/html; charset=utf-8",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", target, k, got, want)
			}
		}
	}
}

// TestPagesFollowTheCSP checks what the policy would otherwise break
// silently: inline scripts, style attributes and event handlers.
func TestPagesFollowTheCSP(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	inline := regexp.MustCompile(`(?i)\s(style|on[a-z]+)=`)
	for target, body := range pages(t, h, login(t, h)) {
		tags := scriptTag.FindAllString(body, -1)
		if len(tags) != 1 || !strings.HasPrefix(tags[0], `<script src="/assets/dashboard.js?v=`) {
			t.Errorf("%s: script tags %q, want only dashboard.js", target, tags)
		}
		if m := inline.FindString(body); m != "" {
			t.Errorf("%s: inline %q attribute, which the CSP blocks", target, m)
		}
	}
}

func TestNoExternalURLs(t *testing.T) {
	src := newFakeSource()
	h, _ := newTestHandler(src)
	// The sites' own links are the only absolute URLs a page may hold.
	own := map[string]bool{}
	addHost := func(raw string) {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			own[u.Hostname()] = true
		}
	}
	for _, s := range src.sites {
		addHost(s.URL)
		addHost(s.Repo)
		for _, d := range s.Domains {
			own[d] = true
		}
		for _, ch := range s.Channels {
			addHost(ch.URL)
		}
	}
	for _, ds := range src.deploys {
		for _, d := range ds {
			addHost(d.URL)
			addHost(d.Build.BaseURL)
		}
	}
	abs := regexp.MustCompile(`https?://[^\s"'<>)]+`)
	for target, body := range pages(t, h, login(t, h)) {
		for _, raw := range abs.FindAllString(body, -1) {
			u, err := url.Parse(raw)
			if err != nil || !own[u.Hostname()] {
				t.Errorf("%s refers to %s, which is not one of the sites' own URLs", target, raw)
			}
		}
	}
	for name := range h.assets {
		res := get(t, h, "/assets/"+name, nil)
		if res.StatusCode != 200 {
			t.Fatalf("asset %s: %d", name, res.StatusCode)
		}
		// SVG's namespace is an identifier, never fetched.
		body := strings.ReplaceAll(res.body, `xmlns="http://www.w3.org/2000/svg"`, "")
		if u := abs.FindString(body); u != "" {
			t.Errorf("asset %s refers to %s", name, u)
		}
		mustNotContain(t, name, body, "@import", "//fonts.", "url(")
	}
}

func TestEscaping(t *testing.T) {
	src := newFakeSource()
	const evil = `<script>alert("owned")</script>`
	src.update(func(f *fakeSource) {
		f.sites[0].Channels[0].Live.Subject = evil
		f.deploys["blog"][1].Commit.Subject = evil
		f.deploys["blog"][1].Error = evil
		f.logs[liveID] = evil
	})
	h, _ := newTestHandler(src)
	c := login(t, h)
	for _, target := range []string{"/", "/sites/blog", "/sites/blog/deploys/" + string(liveID)} {
		body := get(t, h, target, c).body
		mustContain(t, target, body, `&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;`)
		mustNotContain(t, target, body, "<script>alert")
	}
}

func TestAssets(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	page := get(t, h, "/login", nil).body
	for name, ctype := range map[string]string{
		"dashboard.css": "text/css; charset=utf-8",
		"dashboard.js":  "text/javascript; charset=utf-8",
		"favicon.svg":   "image/svg+xml",
	} {
		versioned, err := h.assetURL(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page, `"`+versioned+`"`) {
			t.Errorf("the layout does not link %s", versioned)
		}
		res := get(t, h, versioned, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype || res.body == "" {
			t.Errorf("GET %s: %d %q, want 200 %q", versioned, res.StatusCode, res.Header.Get("Content-Type"), ctype)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("GET %s: Cache-Control %q, want immutable", versioned, cc)
		}
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", versioned)
		}
		if cc := get(t, h, "/assets/"+name, nil).Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("unversioned %s: Cache-Control %q, want no-cache", name, cc)
		}
		r := httptest.NewRequest(http.MethodGet, "/assets/"+name, nil)
		r.Header.Set("If-None-Match", etag)
		if res := serve(t, h, r); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", name, res.StatusCode)
		}
	}
}
