package hugorelease_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/hugorelease"
)

// TestNewTransport: plain http only to this machine; https and file URLs
// (no host or localhost) stay.
func TestNewTransport(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"https://mirror.example/hugo/v{version}/", ""},
		{hugorelease.DefaultReleases, ""},
		{"http://127.0.0.1:8080/v{version}/", ""},
		{"http://127.3.4.5/v{version}/", ""},
		{"http://localhost/v{version}/", ""},
		{"http://LOCALHOST:9/v{version}/", ""},
		{"http://[::1]:8080/v{version}/", ""},
		{"file:///srv/hugo/v{version}/", ""},
		{"file://localhost/srv/hugo/v{version}/", ""},
		{"http://mirror.example/hugo/v{version}/", "plain http to mirror.example: a checksums file from the same server proves integrity, not authenticity"},
		{"http://10.1.2.3/v{version}/", "plain http to 10.1.2.3"},
		{"http://[::2]/v{version}/", "plain http to ::2"},
		{"http://localhost.mirror.example/v{version}/", "plain http to localhost.mirror.example"},
		{"http://127.0.0.1.nip.io/v{version}/", "plain http to 127.0.0.1.nip.io"},
		{"file://fileserver/srv/hugo/v{version}/", `a file URL's host must be empty or localhost, not "fileserver"`},
		{"ftp://mirror.example/v{version}/", "want an https, http or file URL"},
		{"https://mirror.example/hugo/", "has no {version}"},
	} {
		_, err := hugorelease.New(hugorelease.Options{Releases: tt.url, Dir: t.TempDir()})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.url, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.url, err, tt.want)
		}
	}
}

// roundTrip is an http.RoundTripper from a function: a mirror on a name
// that is not loopback, without a network.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRedirectToPlainHTTP: an https mirror that redirects to plain http
// (as a CDN misconfigured, or someone in between, might) is not followed.
func TestRedirectToPlainHTTP(t *testing.T) {
	var asked []string
	client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		asked = append(asked, r.URL.String())
		h := http.Header{}
		h.Set("Location", "http://cdn.example"+r.URL.Path)
		return &http.Response{StatusCode: http.StatusFound, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	s, err := hugorelease.New(hugorelease.Options{Releases: "https://mirror.example/v{version}/", Dir: t.TempDir(), Client: client, GOOS: "linux", GOARCH: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Hugo(context.Background(), "0.152.2")
	if err == nil || !strings.Contains(err.Error(), "redirected to http://cdn.example/v0.152.2/hugo_0.152.2_checksums.txt: plain http to cdn.example") {
		t.Errorf("got %v, want the redirect to plain http refused", err)
	}
	if fault.KindOf(err) != fault.KindTransient {
		t.Errorf("kind %s, want transient", fault.KindOf(err))
	}
	if len(asked) != 1 {
		t.Errorf("asked %v, want only the https URL", asked)
	}
}

// TestFileURLs: a file URL is parsed, not cut: its host may be localhost,
// and escapes in its path are the file's name.
func TestFileURLs(t *testing.T) {
	v := "0.152.2"
	tgz := release(t, "#!hugo", true)
	root := filepath.Join(t.TempDir(), "hugo mirror")
	dir := filepath.Join(root, "v"+v)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(tgz)
	for name, data := range map[string][]byte{
		"hugo_extended_" + v + "_linux-amd64.tar.gz": tgz,
		"hugo_" + v + "_checksums.txt":               fmt.Appendf(nil, "%x  hugo_extended_%s_linux-amd64.tar.gz\n", sum, v),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	escaped := strings.ReplaceAll(filepath.ToSlash(root), " ", "%20")
	for _, url := range []string{
		"file://" + filepath.ToSlash(root) + "/v{version}/",
		"file://localhost" + filepath.ToSlash(root) + "/v{version}/",
		"file://" + escaped + "/v{version}/",
		"file://localhost" + escaped + "/v{version}",
	} {
		b, err := store(t, url, t.TempDir()).Hugo(context.Background(), v)
		if err != nil || !b.Fetched {
			t.Errorf("%s: %+v, %v", url, b, err)
		}
	}
}

func TestChecksumOf(t *testing.T) {
	const asset = "hugo_extended_0.152.2_linux-amd64.tar.gz"
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, tt := range []struct{ name, sums, want, err string }{
		{"listed", a + "  " + asset + "\n" + b + "  hugo_0.152.2_linux-amd64.tar.gz\n", a, ""},
		{"not listed", b + "  hugo_0.152.2_linux-amd64.tar.gz\n", "", ""},
		{"crlf", b + "  other\r\n" + a + "  " + asset + "\r\n", a, ""},
		{"binary mode", a + " *" + asset + "\n", a, ""},
		{"upper case", strings.ToUpper(a) + "  " + asset + "\n", a, ""},
		{"twice, same sum", a + "  " + asset + "\n" + a + " *" + asset + "\r\n", a, ""},
		{"twice, different sums", a + "  " + asset + "\n" + b + "  " + asset + "\n", "", "listed twice, with sha256 " + a + " and " + b},
		{"short sum", a[:63] + "  " + asset + "\n", "", "not 64 hex digits"},
		{"not hex", strings.Repeat("g", 64) + "  " + asset + "\n", "", "not 64 hex digits"},
		{"a prefix of the name", a + "  " + asset + ".sig\n", "", ""},
	} {
		got, err := hugorelease.ChecksumOf([]byte(tt.sums), asset)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %q, %v; want error %q", tt.name, got, err, tt.err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}
