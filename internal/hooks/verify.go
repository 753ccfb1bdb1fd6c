package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verification errors; a handler answers all of them with 401.
var (
	ErrUnauthenticated = errors.New("unauthenticated")       // no signature or token sent
	ErrBadSignature    = errors.New("bad signature")         // one was sent and does not verify
	ErrNoSecret        = errors.New("no webhook secret set") // the site has none: refuse, never accept unsigned
)

// MaxClockSkew is how far a Standard Webhooks timestamp (GitLab signing
// tokens) may be from our clock, either way, before we refuse it as a
// replay.
const MaxClockSkew = 5 * time.Minute

// Verify checks that body was sent by forge with secret, in constant time:
//
//   - github: X-Hub-Signature-256: sha256=<hex HMAC-SHA256>; the legacy
//     SHA-1 X-Hub-Signature alone is refused.
//   - gitlab: X-Gitlab-Token equal to secret, or a Standard Webhooks
//     signature (webhook-id, webhook-timestamp, webhook-signature: v1,<base64>)
//     made with secret, raw or as "whsec_<base64>", at most MaxClockSkew old.
//   - gitea, forgejo: X-Forgejo-Signature or X-Gitea-Signature (<hex>), or
//     X-Hub-Signature-256 (sha256=<hex>).
//   - bitbucket: X-Hub-Signature: sha256=<hex>.
//
// It returns ErrNoSecret for an empty secret, ErrUnauthenticated when the
// request carries no credential of the forge's scheme and ErrBadSignature
// when it does not verify.
func Verify(forge string, h http.Header, body []byte, secret string) error {
	return verify(forge, h, body, secret, time.Now())
}

func verify(forge string, h http.Header, body []byte, secret string, now time.Time) error {
	if secret == "" {
		return ErrNoSecret
	}
	switch forge {
	case "github":
		return verifyGitHub(h, body, secret)
	case "gitlab":
		return verifyGitLab(h, body, secret, now)
	case "gitea", "forgejo":
		return verifyGitea(h, body, secret)
	case "bitbucket":
		return verifyPrefixed(h, "X-Hub-Signature", body, secret)
	}
	return fmt.Errorf("%w %q", ErrUnknownForge, forge)
}

func verifyGitHub(h http.Header, body []byte, secret string) error {
	if h.Get("X-Hub-Signature-256") == "" && h.Get("X-Hub-Signature") != "" {
		return fmt.Errorf("%w: only the legacy SHA-1 X-Hub-Signature was sent; sitehost requires X-Hub-Signature-256 (sha256)", ErrUnauthenticated)
	}
	return verifyPrefixed(h, "X-Hub-Signature-256", body, secret)
}

func verifyGitea(h http.Header, body []byte, secret string) error {
	for _, name := range []string{"X-Forgejo-Signature", "X-Gitea-Signature"} {
		if sig := h.Get(name); sig != "" {
			return checkHex(name, sig, body, secret)
		}
	}
	if h.Get("X-Hub-Signature-256") != "" {
		return verifyPrefixed(h, "X-Hub-Signature-256", body, secret)
	}
	return fmt.Errorf("%w: no X-Gitea-Signature, X-Forgejo-Signature or X-Hub-Signature-256 header", ErrUnauthenticated)
}

// verifyPrefixed checks a "sha256=<hex>" header.
func verifyPrefixed(h http.Header, name string, body []byte, secret string) error {
	sig := h.Get(name)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", ErrUnauthenticated, name)
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		scheme, _, _ := strings.Cut(sig, "=")
		return fmt.Errorf("%w: %s uses %q; sitehost requires sha256=<hex HMAC-SHA256>", ErrBadSignature, name, scheme)
	}
	return checkHex(name, hexSig, body, secret)
}

// checkHex compares a hex HMAC-SHA256 of body with sig in constant time.
func checkHex(name, sig string, body []byte, secret string) error {
	got, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil || !hmac.Equal(got, mac([]byte(secret), body)) {
		return fmt.Errorf("%w: %s does not match the body", ErrBadSignature, name)
	}
	return nil
}

func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func verifyGitLab(h http.Header, body []byte, secret string, now time.Time) error {
	token, sigs := h.Get("X-Gitlab-Token"), h.Get("Webhook-Signature")
	if token == "" && sigs == "" {
		return fmt.Errorf("%w: no X-Gitlab-Token or webhook-signature header", ErrUnauthenticated)
	}
	var err error
	if token != "" {
		// Hash both sides so the comparison does not leak the length.
		a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
		if hmac.Equal(a[:], b[:]) {
			return nil
		}
		err = fmt.Errorf("%w: X-Gitlab-Token does not match", ErrBadSignature)
	}
	if sigs != "" {
		err = verifyStandard(h, body, secret, now)
	}
	return err
}

// verifyStandard checks a Standard Webhooks signature
// (https://www.standardwebhooks.com/): HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>", base64, "v1,"-prefixed, one
// or more separated by spaces.
func verifyStandard(h http.Header, body []byte, secret string, now time.Time) error {
	id, ts := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp")
	if id == "" || ts == "" {
		return fmt.Errorf("%w: webhook-signature without webhook-id and webhook-timestamp", ErrBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not Unix seconds", ErrBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("%w: webhook-timestamp is %v away from our clock (at most %v allowed)", ErrBadSignature, d.Round(time.Second), MaxClockSkew)
	}
	key := []byte(secret)
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return fmt.Errorf("%w: the site's secret starts with whsec_ but is not base64: %w", ErrBadSignature, err)
		}
	}
	want := mac(key, []byte(id), []byte("."), []byte(ts), []byte("."), body)
	for _, s := range strings.Fields(h.Get("Webhook-Signature")) {
		version, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 webhook-signature matches", ErrBadSignature)
}
