// Package bearer checks the admin API token wherever the admin listener
// reads it (the API, the dashboard's header and login form, the generic
// webhook): the Authorization header's scheme is matched without regard
// to case (RFC 9110 §11.1), the token is compared in constant time, and
// wrong tokens are slowed down per client address by a small token
// bucket, so guessing is limited to a few tries a second.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MinLength is the shortest admin token a server accepts: 32 characters,
// as 16 random bytes in hex. The Guard slows guessing down; only length
// makes it hopeless.
const MinLength = 32

// ErrTooShort is CheckLength's error.
var ErrTooShort = errors.New("bearer: token too short")

// CheckLength refuses a token under MinLength characters; "" (no token:
// the API refuses everyone) passes.
func CheckLength(token string) error {
	if n := len(token); n > 0 && n < MinLength {
		return fmt.Errorf("%w: %d characters, at least %d needed (make one with: openssl rand -hex 16)", ErrTooShort, n, MinLength)
	}
	return nil
}

// Reasons a check fails, as OnFailure reports them.
const (
	ReasonWrong   = "wrong_token"
	ReasonLimited = "rate_limited"
)

// Token returns the credentials of an "Authorization: Bearer <token>"
// header, and whether there was one.
func Token(h http.Header) (string, bool) {
	scheme, tok, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// Equal compares got with want in constant time; an empty want matches
// nothing, so an unset token refuses everyone. Their hashes are compared,
// so the time does not even tell a guess of the wrong length.
func Equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// Verdict is the outcome of a check.
type Verdict int

const (
	// Right: the token matches.
	Right Verdict = iota
	// Wrong: a token was given and does not match (counted against the
	// client).
	Wrong
	// Limited: the client sent too many wrong tokens lately; the token
	// was not looked at. Answer 429 with RetryAfter.
	Limited
)

// Options configure a Guard. Zero values take the defaults.
type Options struct {
	// Token is the admin token; "" matches nothing.
	Token string
	// Burst is how many wrong tokens a client may send in a row (5).
	Burst int
	// Refill is how often a client earns one more try (1 s).
	Refill time.Duration
	// MaxClients bounds how many client addresses are remembered (10,000);
	// the least recently seen are forgotten first.
	MaxClients int
	// Now is the clock (time.Now).
	Now func() time.Time
	// OnFailure is told of each refused check, with ReasonWrong or
	// ReasonLimited (for the metrics); nil ignores them.
	OnFailure func(reason string)
}

// Guard checks tokens against the admin token, per client. It is safe for
// concurrent use.
type Guard struct {
	token  string
	limit  *limiter
	onFail func(string)
}

// New returns a Guard.
func New(opts Options) *Guard {
	if opts.Burst <= 0 {
		opts.Burst = 5
	}
	if opts.Refill <= 0 {
		opts.Refill = time.Second
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 10_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnFailure == nil {
		opts.OnFailure = func(string) {}
	}
	return &Guard{
		token:  opts.Token,
		limit:  newLimiter(opts.Burst, opts.Refill, opts.MaxClients, opts.Now),
		onFail: opts.OnFailure,
	}
}

// Check checks tok, a token r presented (in a header or a form), for r's
// client. When the client is over its limit the token is not compared at
// all, so a right one is refused too: otherwise guessing could go on at
// full speed, learning only from the answer. The limit is per client
// address, so an operator elsewhere is not locked out by an attacker;
// behind a reverse proxy every client shares the proxy's address.
// RetryAfter is set for Limited.
func (g *Guard) Check(r *http.Request, tok string) (v Verdict, retryAfter time.Duration) {
	key := clientKey(r.RemoteAddr)
	if wait, ok := g.limit.allow(key); !ok {
		g.onFail(ReasonLimited)
		return Limited, wait
	}
	if Equal(tok, g.token) {
		return Right, 0
	}
	g.limit.fail(key)
	g.onFail(ReasonWrong)
	return Wrong, 0
}

// Header checks r's Authorization header; ok is false when r has no
// bearer token (nothing is checked or counted then).
func (g *Guard) Header(r *http.Request) (v Verdict, retryAfter time.Duration, ok bool) {
	tok, ok := Token(r.Header)
	if !ok {
		return Wrong, 0, false
	}
	v, retryAfter = g.Check(r, tok)
	return v, retryAfter, true
}

// SetRetryAfter sets the Retry-After header of a 429 in whole seconds,
// rounded up.
func SetRetryAfter(h http.Header, d time.Duration) {
	s := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(max(s, 1), 10))
}
