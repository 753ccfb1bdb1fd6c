package hooks_test

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // to send the legacy GitHub signature we refuse
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/hooks"
)

const testSecret = "It's a Secret to Everybody"

// standardSign returns Standard Webhooks headers signing body at ts with
// key (the decoded secret).
func standardSign(key []byte, id string, ts time.Time, body []byte) http.Header {
	sec := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + sec + "."))
	m.Write(body)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", sec)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return h
}

func TestVerify(t *testing.T) {
	ghBody := fixture(t, "github/push.branch-updated.woodpecker.json")
	glBody := fixture(t, "gitlab/push_hook.docs.json")
	gtBody := fixture(t, "gitea/push.docs.json")
	bbBody := fixture(t, "bitbucket/cloud.repo_push.woodpecker.json")
	good := func(body []byte) string { return hmacHex(testSecret, body) }
	bad := func(body []byte) string { return hmacHex("not the secret", body) }
	sha1Hex := func(body []byte) string {
		m := hmac.New(sha1.New, []byte(testSecret))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	whsecKey := []byte("0123456789abcdef0123456789abcdef")
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(whsecKey)
	now := time.Now()
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	hdr := func(kv ...string) http.Header { return with(http.Header{}, kv...) }

	tests := []struct {
		name    string
		forge   string
		body    []byte
		h       http.Header
		secret  string // default testSecret
		want    error  // nil, ErrUnauthenticated, ErrBadSignature, ErrNoSecret
		wantMsg string // substring of the error
	}{
		{name: "github good", forge: "github", body: ghBody, h: hdr("X-Hub-Signature-256", "sha256="+good(ghBody))},
		{name: "github bad", forge: "github", body: ghBody, h: hdr("X-Hub-Signature-256", "sha256="+bad(ghBody)), want: hooks.ErrBadSignature},
		{name: "github other body", forge: "github", body: append([]byte(" "), ghBody...), h: hdr("X-Hub-Signature-256", "sha256="+good(ghBody)), want: hooks.ErrBadSignature},
		{name: "github missing", forge: "github", body: ghBody, h: hdr(), want: hooks.ErrUnauthenticated},
		{name: "github with a gitlab token", forge: "github", body: ghBody, h: hdr("X-Gitlab-Token", testSecret), want: hooks.ErrUnauthenticated},
		{name: "github legacy sha1 only", forge: "github", body: ghBody, h: hdr("X-Hub-Signature", "sha1="+sha1Hex(ghBody)),
			want: hooks.ErrUnauthenticated, wantMsg: "requires X-Hub-Signature-256"},
		{name: "github sha1 prefix", forge: "github", body: ghBody, h: hdr("X-Hub-Signature-256", "sha1="+sha1Hex(ghBody)),
			want: hooks.ErrBadSignature, wantMsg: "sha256"},
		{name: "github bare hex", forge: "github", body: ghBody, h: hdr("X-Hub-Signature-256", good(ghBody)), want: hooks.ErrBadSignature},
		{name: "github not hex", forge: "github", body: ghBody, h: hdr("X-Hub-Signature-256", "sha256=zz"), want: hooks.ErrBadSignature},
		{name: "github no secret", forge: "github", body: ghBody, h: hdr("X-Hub-Signature-256", "sha256="+hmacHex("", ghBody)), secret: "-", want: hooks.ErrNoSecret},

		{name: "gitlab token", forge: "gitlab", body: glBody, h: hdr("X-Gitlab-Token", testSecret)},
		{name: "gitlab wrong token", forge: "gitlab", body: glBody, h: hdr("X-Gitlab-Token", testSecret+"x"), want: hooks.ErrBadSignature},
		{name: "gitlab missing", forge: "gitlab", body: glBody, h: hdr(), want: hooks.ErrUnauthenticated},
		{name: "gitlab with a github signature", forge: "gitlab", body: glBody, h: hdr("X-Hub-Signature-256", "sha256="+good(glBody)), want: hooks.ErrUnauthenticated},
		{name: "gitlab no secret", forge: "gitlab", body: glBody, h: hdr("X-Gitlab-Token", ""), secret: "-", want: hooks.ErrNoSecret},
		{name: "gitlab signed", forge: "gitlab", body: glBody, h: standardSign([]byte(testSecret), "msg_1", now, glBody)},
		{name: "gitlab signed whsec", forge: "gitlab", body: glBody, h: standardSign(whsecKey, "msg_1", now, glBody), secret: whsec},
		{name: "gitlab signed whsec used raw", forge: "gitlab", body: glBody, h: standardSign([]byte(whsec), "msg_1", now, glBody), secret: whsec,
			want: hooks.ErrBadSignature},
		{name: "gitlab signed, several signatures", forge: "gitlab", body: glBody,
			h: func() http.Header {
				h := standardSign([]byte(testSecret), "msg_1", now, glBody)
				h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString([]byte("rotated-out"))+" "+h.Get("webhook-signature"))
				return h
			}()},
		{name: "gitlab signed bad", forge: "gitlab", body: glBody, h: standardSign([]byte("other"), "msg_1", now, glBody), want: hooks.ErrBadSignature},
		{name: "gitlab signed, other id", forge: "gitlab", body: glBody,
			h: with(standardSign([]byte(testSecret), "msg_1", now, glBody), "webhook-id", "msg_2"), want: hooks.ErrBadSignature},
		{name: "gitlab signed expired", forge: "gitlab", body: glBody, h: standardSign([]byte(testSecret), "msg_1", now.Add(-6*time.Minute), glBody),
			want: hooks.ErrBadSignature, wantMsg: "webhook-timestamp"},
		{name: "gitlab signed in the future", forge: "gitlab", body: glBody, h: standardSign([]byte(testSecret), "msg_1", now.Add(6*time.Minute), glBody),
			want: hooks.ErrBadSignature, wantMsg: "webhook-timestamp"},
		{name: "gitlab signed 4 minutes ago", forge: "gitlab", body: glBody, h: standardSign([]byte(testSecret), "msg_1", now.Add(-4*time.Minute), glBody)},
		{name: "gitlab signed v2", forge: "gitlab", body: glBody,
			h: func() http.Header {
				h := standardSign([]byte(testSecret), "msg_1", now, glBody)
				h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v2,", 1))
				return h
			}(), want: hooks.ErrBadSignature},
		{name: "gitlab signed without id", forge: "gitlab", body: glBody,
			h: with(standardSign([]byte(testSecret), "msg_1", now, glBody), "webhook-id", ""), want: hooks.ErrBadSignature},
		{name: "gitlab signed, timestamp not a number", forge: "gitlab", body: glBody,
			h: with(standardSign([]byte(testSecret), "msg_1", now, glBody), "webhook-timestamp", "soon"), want: hooks.ErrBadSignature},
		{name: "gitlab wrong token, good signature", forge: "gitlab", body: glBody,
			h: with(standardSign([]byte(testSecret), "msg_1", now, glBody), "X-Gitlab-Token", "nope")},

		{name: "gitea good", forge: "gitea", body: gtBody, h: hdr("X-Gitea-Signature", good(gtBody))},
		{name: "gitea bad", forge: "gitea", body: gtBody, h: hdr("X-Gitea-Signature", bad(gtBody)), want: hooks.ErrBadSignature},
		{name: "gitea missing", forge: "gitea", body: gtBody, h: hdr(), want: hooks.ErrUnauthenticated},
		{name: "gitea forgejo header", forge: "gitea", body: gtBody, h: hdr("X-Forgejo-Signature", good(gtBody))},
		{name: "forgejo path", forge: "forgejo", body: gtBody, h: hdr("X-Forgejo-Signature", good(gtBody))},
		{name: "gitea forgejo header bad", forge: "gitea", body: gtBody, h: hdr("X-Forgejo-Signature", bad(gtBody)), want: hooks.ErrBadSignature},
		{name: "gitea hub header", forge: "gitea", body: gtBody, h: hdr("X-Hub-Signature-256", "sha256="+good(gtBody))},
		{name: "gitea hub header bad", forge: "gitea", body: gtBody, h: hdr("X-Hub-Signature-256", "sha256="+bad(gtBody)), want: hooks.ErrBadSignature},
		{name: "gitea all headers", forge: "gitea", body: gtBody, h: hdr("X-Gitea-Signature", good(gtBody), "X-Gogs-Signature", good(gtBody),
			"X-Hub-Signature-256", "sha256="+good(gtBody), "X-Hub-Signature", "sha1="+sha1Hex(gtBody))},
		{name: "gitea prefixed value", forge: "gitea", body: gtBody, h: hdr("X-Gitea-Signature", "sha256="+good(gtBody)), want: hooks.ErrBadSignature},
		{name: "gitea sha1 only", forge: "gitea", body: gtBody, h: hdr("X-Hub-Signature", "sha1="+sha1Hex(gtBody)), want: hooks.ErrUnauthenticated},
		{name: "gitea with a gitlab token", forge: "gitea", body: gtBody, h: hdr("X-Gitlab-Token", testSecret), want: hooks.ErrUnauthenticated},
		{name: "gitea no secret", forge: "gitea", body: gtBody, h: hdr("X-Gitea-Signature", hmacHex("", gtBody)), secret: "-", want: hooks.ErrNoSecret},

		{name: "bitbucket good", forge: "bitbucket", body: bbBody, h: hdr("X-Hub-Signature", "sha256="+good(bbBody))},
		{name: "bitbucket bad", forge: "bitbucket", body: bbBody, h: hdr("X-Hub-Signature", "sha256="+bad(bbBody)), want: hooks.ErrBadSignature},
		{name: "bitbucket missing", forge: "bitbucket", body: bbBody, h: hdr(), want: hooks.ErrUnauthenticated},
		{name: "bitbucket sha1", forge: "bitbucket", body: bbBody, h: hdr("X-Hub-Signature", "sha1="+sha1Hex(bbBody)), want: hooks.ErrBadSignature},
		{name: "bitbucket github header", forge: "bitbucket", body: bbBody, h: hdr("X-Hub-Signature-256", "sha256="+good(bbBody)), want: hooks.ErrUnauthenticated},
		{name: "bitbucket no secret", forge: "bitbucket", body: bbBody, h: hdr("X-Hub-Signature", "sha256="+hmacHex("", bbBody)), secret: "-", want: hooks.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			switch secret {
			case "":
				secret = testSecret
			case "-":
				secret = ""
			}
			err := hooks.Verify(tt.forge, tt.h, tt.body, secret)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestVerifyUnknownForge(t *testing.T) {
	if err := hooks.Verify("svn", http.Header{}, nil, testSecret); !errors.Is(err, hooks.ErrUnknownForge) {
		t.Errorf("err = %v, want ErrUnknownForge", err)
	}
}
