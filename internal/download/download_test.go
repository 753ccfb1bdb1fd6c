package download_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/download"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("hello")) //nolint:errcheck // the client's problem
		case "/gone":
			w.WriteHeader(http.StatusGone)
		case "/private":
			w.WriteHeader(http.StatusForbidden)
		case "/broken":
			w.WriteHeader(http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a b.txt"), []byte("from a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url   string
		limit int64
		want  string
		err   error
		msg   string
	}{
		{url: srv.URL + "/ok", limit: 5, want: "hello"},
		{url: srv.URL + "/ok", limit: 4, err: download.ErrTooLarge, msg: "larger than 4 bytes"},
		{url: srv.URL + "/missing", limit: 9, err: download.ErrNotFound, msg: "404"},
		{url: srv.URL + "/gone", limit: 9, err: download.ErrNotFound, msg: "410"},
		{url: srv.URL + "/private", limit: 9, err: download.ErrForbidden, msg: "403"},
		{url: srv.URL + "/broken", limit: 9, msg: "502 Bad Gateway"},
		{url: "file://" + dir + "/a%20b.txt", limit: 99, want: "from a file"},
		{url: "file://localhost" + dir + "/a%20b.txt", limit: 99, want: "from a file"},
		{url: "file://" + dir + "/none", limit: 99, err: download.ErrNotFound},
		{url: "file://example.com" + dir + "/a%20b.txt", limit: 99, msg: "host must be empty or localhost"},
		{url: "ftp://example.com/x", limit: 99, msg: "want an https, http or file URL"},
	} {
		var buf bytes.Buffer
		err := download.Get(context.Background(), nil, tt.url, &buf, tt.limit)
		switch {
		case tt.err == nil && tt.msg == "":
			if err != nil || buf.String() != tt.want {
				t.Errorf("%s: %q, %v; want %q", tt.url, buf.String(), err, tt.want)
			}
		case err == nil:
			t.Errorf("%s: no error", tt.url)
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("%s: %v, want %v", tt.url, err, tt.err)
		case !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), strings.SplitN(tt.url, "%", 2)[0][:10]):
			t.Errorf("%s: %q lacks %q or the URL", tt.url, err, tt.msg)
		}
	}
}
