package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUnauthenticated(t *testing.T) {
	src := newFakeSource()
	h, _ := newTestHandler(src)
	for _, tc := range []struct {
		name, method, target string
		header               map[string]string
		status               int
		location             string
	}{
		{"overview redirects to login", "GET", "/", nil, 303, "/login?next=%2F"},
		{"site page keeps its query", "GET", "/sites/blog?sync=requested", nil, 303, "/login?next=%2Fsites%2Fblog%3Fsync%3Drequested"},
		{"unknown page redirects too", "GET", "/nope", nil, 303, "/login?next=%2Fnope"},
		{"POST is refused", "POST", "/sites/blog/sync", nil, 401, ""},
		{"background refresh is refused", "GET", "/", map[string]string{"X-Requested-With": "fetch"}, 401, ""},
		{"wrong bearer token", "GET", "/", map[string]string{"Authorization": "Bearer nope"}, 303, "/login?next=%2F"},
		{"token in the wrong scheme", "GET", "/", map[string]string{"Authorization": "Basic " + testToken}, 303, "/login?next=%2F"},
		{"right bearer token", "GET", "/", map[string]string{"Authorization": "Bearer " + testToken}, 200, ""},
		{"bearer on POST", "POST", "/sites/blog/sync", map[string]string{"Authorization": "Bearer " + testToken}, 303, "/sites/blog?sync=requested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			res := serve(t, h, r)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", res.StatusCode, tc.status, res.body)
			}
			if got := res.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if tc.status == 401 {
				mustContain(t, "401 page", res.body, "Log in first")
				mustNotContain(t, "401 page", res.body, "blog.example.org")
			}
		})
	}
	if got := src.triggered(); len(got) != 1 {
		t.Errorf("Trigger called for %v, want once (by the bearer POST only)", got)
	}
}

func TestLogin(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())

	form := get(t, h, "/login?next=%2Fsites%2Fblog", nil)
	if form.StatusCode != 200 {
		t.Fatalf("GET /login: %d", form.StatusCode)
	}
	mustContain(t, "login page", form.body, `type="password"`, `name="token"`, `name="next" value="/sites/blog"`,
		`action="/login"`, "<title>Log in · sitehost</title>")
	mustNotContain(t, "login page", form.body, "Log out")

	wrong := postForm(t, h, "/login", url.Values{"token": {"guess"}, "next": {"/sites/blog"}}, nil)
	if wrong.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", wrong.StatusCode)
	}
	mustContain(t, "wrong-token page", wrong.body, "Wrong token.", `name="next" value="/sites/blog"`)
	if len(wrong.Cookies()) != 0 {
		t.Errorf("wrong token set cookies %v", wrong.Cookies())
	}

	for _, tc := range []struct{ next, want string }{
		{"", "/"},
		{"/sites/blog", "/sites/blog"},
		{"/sites/blog?sync=requested", "/sites/blog?sync=requested"},
		{"//evil.example", "/"},
		{"//evil.example/sites", "/"},
		{`/\evil.example`, "/"},
		{"https://evil.example/", "/"},
		{"evil.example", "/"},
		{"javascript:alert(1)", "/"},
	} {
		res := postForm(t, h, "/login", url.Values{"token": {testToken}, "next": {tc.next}}, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tc.want {
			t.Errorf("login with next=%q: %d to %q, want 303 to %q", tc.next, res.StatusCode, res.Header.Get("Location"), tc.want)
		}
	}

	res := postForm(t, h, "/login", url.Values{"token": {testToken}}, nil)
	var c *http.Cookie
	for _, rc := range res.Cookies() {
		if rc.Name == cookieName {
			c = rc
		}
	}
	if c == nil {
		t.Fatalf("no %s cookie in %v", cookieName, res.Header["Set-Cookie"])
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge != 86400 {
		t.Errorf("cookie %q: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP, Max-Age=86400", res.Header.Get("Set-Cookie"))
	}
	// The value is <expiry>.<hex HMAC-SHA256(token, prefix+expiry)>.
	exp := strconv.FormatInt(now.Add(24*time.Hour).Unix(), 10)
	m := hmac.New(sha256.New, []byte(testToken))
	m.Write([]byte("sitehost-dashboard-session|" + exp))
	if want := exp + "." + hex.EncodeToString(m.Sum(nil)); c.Value != want {
		t.Errorf("cookie value %q, want %q", c.Value, want)
	}

	page := get(t, h, "/", c)
	if page.StatusCode != 200 {
		t.Fatalf("GET / with the session: %d", page.StatusCode)
	}
	mustContain(t, "overview", page.body, `action="/logout"`, "Log out")

	again := get(t, h, "/login?next=%2Fsites%2Fdocs", c)
	if again.StatusCode != http.StatusSeeOther || again.Header.Get("Location") != "/sites/docs" {
		t.Errorf("GET /login while logged in: %d to %q, want 303 to /sites/docs", again.StatusCode, again.Header.Get("Location"))
	}
}

func TestLoginOverTLSSetsSecureCookie(t *testing.T) {
	h, _ := newTestHandler(newFakeSource())
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token="+testToken))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.TLS = &tls.ConnectionState{}
	res := serve(t, h, r)
	if len(res.Cookies()) != 1 || !res.Cookies()[0].Secure {
		t.Errorf("login over TLS: Set-Cookie %q, want Secure", res.Header.Get("Set-Cookie"))
	}
}

func TestSessionRefused(t *testing.T) {
	h, clk := newTestHandler(newFakeSource())
	good := login(t, h)
	exp, sig, _ := strings.Cut(good.Value, ".")
	// flip changes the last hex digit, keeping it a hex digit.
	flip := func(s string) string {
		last := byte('0')
		if s[len(s)-1] == '0' {
			last = '1'
		}
		return s[:len(s)-1] + string(last)
	}
	later, _ := strconv.ParseInt(exp, 10, 64)
	for name, value := range map[string]string{
		"tampered signature": exp + "." + flip(sig),
		"extended expiry":    strconv.FormatInt(later+3600, 10) + "." + sig,
		"no signature":       exp,
		"garbage":            "hello",
		"empty":              "",
	} {
		t.Run(name, func(t *testing.T) {
			c := &http.Cookie{Name: cookieName, Value: value}
			if res := get(t, h, "/", c); res.StatusCode != http.StatusSeeOther {
				t.Errorf("cookie %q: status %d, want 303 to the login form", value, res.StatusCode)
			}
		})
	}

	t.Run("signed with another token", func(t *testing.T) {
		exp := strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10)
		m := hmac.New(sha256.New, []byte("another-token"))
		m.Write([]byte("sitehost-dashboard-session|" + exp))
		c := &http.Cookie{Name: cookieName, Value: exp + "." + hex.EncodeToString(m.Sum(nil))}
		if res := get(t, h, "/", c); res.StatusCode != http.StatusSeeOther {
			t.Errorf("status %d, want 303", res.StatusCode)
		}
	})

	t.Run("expired", func(t *testing.T) {
		if res := get(t, h, "/", good); res.StatusCode != 200 {
			t.Fatalf("fresh cookie: status %d", res.StatusCode)
		}
		clk.Advance(24*time.Hour + time.Second)
		if res := get(t, h, "/", good); res.StatusCode != http.StatusSeeOther {
			t.Errorf("cookie past its expiry: status %d, want 303", res.StatusCode)
		}
	})

	t.Run("logout clears the cookie", func(t *testing.T) {
		res := postForm(t, h, "/logout", nil, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
			t.Errorf("logout: %d to %q, want 303 to /login", res.StatusCode, res.Header.Get("Location"))
		}
		if cs := res.Cookies(); len(cs) != 1 || cs[0].Name != cookieName || cs[0].MaxAge >= 0 || cs[0].Value != "" {
			t.Errorf("logout Set-Cookie %q, want %s cleared", res.Header.Get("Set-Cookie"), cookieName)
		}
	})
}

func TestNoTokenRefusesEveryLogin(t *testing.T) {
	h := New(Options{Source: newFakeSource(), Now: func() time.Time { return now }})
	form := get(t, h, "/login", nil)
	mustContain(t, "login page", form.body, "the server has no API token set (server.api_token_env)")
	mustNotContain(t, "login page", form.body, `name="token"`)
	for _, tok := range []string{"", "anything"} {
		res := postForm(t, h, "/login", url.Values{"token": {tok}}, nil)
		if res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
			t.Errorf("login with %q and no server token: %d, cookies %v; want 401 and none", tok, res.StatusCode, res.Cookies())
		}
		mustContain(t, "refused login", res.body, "server.api_token_env")
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer ")
	if res := serve(t, h, r); res.StatusCode != http.StatusSeeOther {
		t.Errorf("empty bearer token with no server token: %d, want 303", res.StatusCode)
	}
	// A cookie signed with the empty key must not pass either.
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	m := hmac.New(sha256.New, nil)
	m.Write([]byte("sitehost-dashboard-session|" + exp))
	forged := &http.Cookie{Name: cookieName, Value: exp + "." + hex.EncodeToString(m.Sum(nil))}
	if res := get(t, h, "/", forged); res.StatusCode != http.StatusSeeOther {
		t.Errorf("cookie signed with an empty key: %d, want 303", res.StatusCode)
	}
}

func TestCrossSitePostRefused(t *testing.T) {
	src := newFakeSource()
	h, _ := newTestHandler(src)
	c := login(t, h)
	r := httptest.NewRequest(http.MethodPost, "/sites/blog/sync", nil)
	r.AddCookie(c)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("Origin", "https://evil.example")
	if res := serve(t, h, r); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site sync POST: status %d, want 403", res.StatusCode)
	}
	if got := src.triggered(); len(got) != 0 {
		t.Errorf("cross-site POST triggered %v", got)
	}
}

// TestWrongTokensSlowed: after five wrong tokens from one address, in the
// login form or a header, the next attempt gets 429 with Retry-After and
// its token is not looked at, right or wrong; a second later one more try
// is allowed. Another address and a session are not affected.
func TestWrongTokensSlowed(t *testing.T) {
	h, clk := newTestHandler(newFakeSource())
	login := func(remote, token string) response {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		return serve(t, h, r)
	}
	withHeader := func(remote, auth string) response {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", auth)
		r.RemoteAddr = remote
		return serve(t, h, r)
	}
	const attacker, operator = "192.0.2.1:1234", "198.51.100.2:1234"
	for i := range 3 {
		if res := login(attacker, "guess"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong login %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	for i := range 2 {
		if res := withHeader(attacker, "bearer guess"); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("wrong header %d: %d, want 303 to the login form", i+1, res.StatusCode)
		}
	}
	res := login(attacker, testToken)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("right token after 5 wrong ones: %d, Retry-After %q; want 429, 1", res.StatusCode, res.Header.Get("Retry-After"))
	}
	mustContain(t, "429 login page", res.body, tooManyMessage)
	if len(res.Cookies()) != 0 {
		t.Errorf("a limited login set cookies %v", res.Cookies())
	}
	if res := withHeader(attacker, "Bearer "+testToken); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right header while limited: %d, want 429", res.StatusCode)
	} else {
		mustNotContain(t, "429 page", res.body, "Log out")
	}
	if res := login(operator, testToken); res.StatusCode != http.StatusSeeOther {
		t.Errorf("right token from another address: %d, want 303", res.StatusCode)
	}

	clk.Advance(time.Second)
	if res := withHeader(attacker, "BEARER "+testToken); res.StatusCode != http.StatusOK {
		t.Errorf("right header a second later: %d, want 200", res.StatusCode)
	}
	good := login(attacker, testToken)
	if good.StatusCode != http.StatusSeeOther || len(good.Cookies()) != 1 {
		t.Fatalf("right login a second later: %d, cookies %v; want 303 and a session", good.StatusCode, good.Cookies())
	}
	// Lock the address out again: its session still works.
	for range 2 {
		login(attacker, "guess")
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = attacker
	r.AddCookie(good.Cookies()[0])
	if res := serve(t, h, r); res.StatusCode != http.StatusOK {
		t.Errorf("session from a limited address: %d, want 200", res.StatusCode)
	}
}
