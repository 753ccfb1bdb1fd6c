package bearer

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const token = "0123456789abcdef0123456789abcdef"

func TestToken(t *testing.T) {
	tests := []struct {
		name   string
		header string // Authorization; "" sends none
		want   string
		wantOK bool
	}{
		{"canonical", "Bearer abc", "abc", true},
		{"lowercase scheme", "bearer abc", "abc", true},
		{"uppercase scheme", "BEARER abc", "abc", true},
		{"mixed case scheme", "bEaReR abc", "abc", true},
		{"extra spaces", "Bearer   abc ", "abc", true},
		{"no header", "", "", false},
		{"basic scheme", "Basic abc", "", false},
		{"no space", "Bearerabc", "", false},
		{"bare token", "abc", "", false},
		{"scheme only", "Bearer", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			got, ok := Token(h)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Token(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		got, want string
		ok        bool
	}{
		{"abc", "abc", true},
		{"abd", "abc", false},
		{"ab", "abc", false},
		{"abcd", "abc", false},
		{"", "", false},
		{"abc", "", false},
	}
	for _, tt := range tests {
		if ok := Equal(tt.got, tt.want); ok != tt.ok {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.got, tt.want, ok, tt.ok)
		}
	}
}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func request(remote, auth string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sites", nil)
	r.RemoteAddr = remote
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

// TestGuardLimitsWrongTokens: five wrong tokens in a row are refused as
// wrong, the sixth request is refused without its token being looked at,
// even the right one, and one more try is earned each second. Another
// address is not affected.
func TestGuardLimitsWrongTokens(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	var failures []string
	g := New(Options{Token: token, Now: c.now, OnFailure: func(r string) { failures = append(failures, r) }})
	attacker, operator := "192.0.2.1:4000", "198.51.100.7:5000"
	check := func(remote, tok string, want Verdict, wantRetry time.Duration) {
		t.Helper()
		v, retry := g.Check(request(remote, ""), tok)
		if v != want || retry != wantRetry {
			t.Fatalf("Check(%s, %q) = %v, %v; want %v, %v", remote, tok, v, retry, want, wantRetry)
		}
	}
	for range 5 {
		check(attacker, "guess", Wrong, 0)
	}
	check(attacker, "guess", Limited, time.Second)
	check(attacker, token, Limited, time.Second)
	check(operator, token, Right, 0)

	c.advance(500 * time.Millisecond)
	check(attacker, token, Limited, 500*time.Millisecond)
	c.advance(500 * time.Millisecond)
	check(attacker, token, Right, 0) // a right token costs nothing
	check(attacker, "guess", Wrong, 0)
	check(attacker, "guess", Limited, time.Second)

	c.advance(5 * time.Second) // full again
	for range 5 {
		check(attacker, "guess", Wrong, 0)
	}
	check(attacker, "guess", Limited, time.Second)

	wrong, limited := 0, 0
	for _, r := range failures {
		switch r {
		case ReasonWrong:
			wrong++
		case ReasonLimited:
			limited++
		}
	}
	if wrong != 11 || limited != 5 {
		t.Errorf("failures reported: %d wrong, %d limited; want 11, 5 (%q)", wrong, limited, failures)
	}
}

// TestGuardIPv6Prefix: the addresses of one IPv6 /64 share a bucket.
func TestGuardIPv6Prefix(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := New(Options{Token: token, Burst: 2, Now: c.now})
	g.Check(request("[2001:db8:1:2::1]:443", ""), "guess")
	g.Check(request("[2001:db8:1:2::ffff]:443", ""), "guess")
	if v, _ := g.Check(request("[2001:db8:1:2:aaaa::5]:443", ""), token); v != Limited {
		t.Errorf("third address of the /64: %v, want Limited", v)
	}
	if v, _ := g.Check(request("[2001:db8:1:3::1]:443", ""), token); v != Right {
		t.Errorf("another /64: %v, want Right", v)
	}
}

func TestGuardHeader(t *testing.T) {
	g := New(Options{Token: token})
	tests := []struct {
		auth   string
		want   Verdict
		wantOK bool
	}{
		{"Bearer " + token, Right, true},
		{"bearer " + token, Right, true},
		{"Bearer nope", Wrong, true},
		{"Basic " + token, Wrong, false},
		{"", Wrong, false},
	}
	for _, tt := range tests {
		v, _, ok := g.Header(request("203.0.113.9:1", tt.auth))
		if v != tt.want || ok != tt.wantOK {
			t.Errorf("Header(%q) = %v, %v; want %v, %v", tt.auth, v, ok, tt.want, tt.wantOK)
		}
	}
}

// TestGuardMemoryBounded: a spray of addresses keeps at most MaxClients
// buckets, and buckets that refilled are dropped.
func TestGuardMemoryBounded(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g := New(Options{Token: token, MaxClients: 100, Now: c.now})
	for i := range 10_000 {
		g.Check(request(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), ""), "guess")
	}
	if n := len(g.limit.clients); n != 100 || g.limit.order.Len() != 100 {
		t.Fatalf("after 10,000 addresses: %d clients (%d in order), want 100", n, g.limit.order.Len())
	}
	// The last address sprayed is remembered; the first was forgotten.
	if _, ok := g.limit.clients["10.0.39.15"]; !ok {
		t.Error("the most recent address was forgotten")
	}
	if _, ok := g.limit.clients["10.0.0.0"]; ok {
		t.Error("the oldest address is still remembered")
	}
	c.advance(10 * time.Second)
	g.Check(request("192.0.2.200:1", ""), "guess")
	if n := len(g.limit.clients); n != 1 {
		t.Errorf("after every bucket refilled and one new failure: %d clients, want 1", n)
	}
}

func TestSetRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {90 * time.Second, "90"}} {
		h := http.Header{}
		SetRetryAfter(h, tt.d)
		if got := h.Get("Retry-After"); got != tt.want {
			t.Errorf("SetRetryAfter(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestCheckLength(t *testing.T) {
	for _, tt := range []struct {
		token string
		ok    bool
	}{
		{"", true},
		{"short", false},
		{token[:31], false},
		{token, true},
		{token + "more", true},
	} {
		err := CheckLength(tt.token)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrTooShort)) {
			t.Errorf("CheckLength(%d characters) = %v, want ok %v", len(tt.token), err, tt.ok)
		}
	}
}

// TestLimiterChargesEveryTry: guesses that passed allow together (sent
// at once) are all charged, so the client then waits as long as they
// would have taken one by one. The interleaving is laid out here, as
// goroutines would not reliably produce it.
func TestLimiterChargesEveryTry(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	l := newLimiter(5, time.Second, 100, func() time.Time { return at })
	for i := range 50 {
		if _, ok := l.allow("192.0.2.1"); !ok {
			t.Fatalf("try %d refused before any was charged", i+1)
		}
	}
	for range 50 {
		l.fail("192.0.2.1")
	}
	// 50 charged to a bucket of 5: 46 s until one more try.
	if wait, ok := l.allow("192.0.2.1"); ok || wait != 46*time.Second {
		t.Errorf("after 50 tries at once: allowed %v, wait %v; want refused for 46 s", ok, wait)
	}
}
