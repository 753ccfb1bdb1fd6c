package hooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixtureDir holds real forge payloads (copied from shared/testdata, with
// their sources and licenses in manifest.json).
const fixtureDir = "../../testdata/webhooks"

type manifestEntry struct {
	File    string            `json:"file"`
	Forge   string            `json:"forge"`
	Headers map[string]string `json:"headers"`
}

// loadManifest reads the fixtures' manifest.
func loadManifest(tb testing.TB) []manifestEntry {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "manifest.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var m struct {
		Entries []manifestEntry `json:"entries"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("manifest.json: %v", err)
	}
	if len(m.Entries) == 0 {
		tb.Fatal("manifest.json lists no payloads")
	}
	return m.Entries
}

// fixture returns the exact bytes of a payload file.
func fixture(tb testing.TB, file string) []byte {
	tb.Helper()
	loadManifest(tb) // skip or fail uniformly when the directory is missing
	data, err := os.ReadFile(filepath.Join(fixtureDir, filepath.FromSlash(file)))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// entryHeaders returns the manifest headers of file.
func entryHeaders(tb testing.TB, file string) http.Header {
	tb.Helper()
	for _, e := range loadManifest(tb) {
		if e.File == file {
			return toHeader(e.Headers)
		}
	}
	tb.Fatalf("%s is not in manifest.json", file)
	return nil
}

func toHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// hmacHex is the hex HMAC-SHA256 forges send.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// sign adds the credential the forge of the path sends with secret.
// For "gitea" it uses X-Gitea-Signature, for "forgejo" X-Forgejo-Signature.
func sign(h http.Header, forge string, body []byte, secret string) http.Header {
	h = h.Clone()
	switch forge {
	case "github":
		h.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
	case "gitlab":
		h.Set("X-Gitlab-Token", secret)
	case "gitea":
		h.Set("X-Gitea-Signature", hmacHex(secret, body))
	case "forgejo":
		h.Set("X-Forgejo-Signature", hmacHex(secret, body))
	case "bitbucket":
		h.Set("X-Hub-Signature", "sha256="+hmacHex(secret, body))
	default:
		panic("sign: unknown forge " + forge)
	}
	return h
}

// mutate decodes a fixture, applies edits (dotted paths, array indexes as
// numbers; a nil value deletes the key, json.RawMessage("null") sets null)
// and encodes it again. For parse tests only: the bytes
// differ from the file's.
func mutate(tb testing.TB, file string, edits map[string]any) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(tb, file), &m); err != nil {
		tb.Fatal(err)
	}
	for p, v := range edits {
		keys := strings.Split(p, ".")
		var cur any = m
		for _, k := range keys[:len(keys)-1] {
			cur = child(tb, cur, k)
		}
		last := keys[len(keys)-1]
		switch c := cur.(type) {
		case map[string]any:
			if v == nil {
				delete(c, last)
			} else {
				c[last] = v
			}
		case []any:
			c[index(tb, c, last)] = v
		default:
			tb.Fatalf("mutate %s: %s is not an object or array", file, p)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func child(tb testing.TB, v any, k string) any {
	tb.Helper()
	switch c := v.(type) {
	case map[string]any:
		if next, ok := c[k]; ok {
			return next
		}
	case []any:
		return c[index(tb, c, k)]
	}
	tb.Fatalf("mutate: no %q", k)
	return nil
}

func index(tb testing.TB, a []any, k string) int {
	tb.Helper()
	i, err := strconv.Atoi(k)
	if err != nil || i < 0 || i >= len(a) {
		tb.Fatalf("mutate: bad index %q", k)
	}
	return i
}
