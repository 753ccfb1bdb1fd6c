package admin_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/hooks"
)

// TestBodyReadErrorsAreFixed: a webhook body that is cut short, or comes
// too slowly for the server's read timeout, gets a 400 whose body is a
// fixed message: no socket address, no "i/o timeout".
func TestBodyReadErrorsAreFixed(t *testing.T) {
	guard := bearer.New(bearer.Options{Token: token})
	h := admin.New(admin.Options{Token: token, Guard: guard, Loop: &fakeLoop{}, Deploys: &fakeDeploys{},
		Hooks: map[string]http.Handler{
			"generic": &hooks.Generic{Guard: guard, Dispatch: &fakeLoop{}, Logger: slog.New(slog.DiscardHandler)},
			"github":  &hooks.Forge{Logger: slog.New(slog.DiscardHandler)},
		}})
	srv := httptest.NewUnstartedServer(h)
	// Long enough for the headers on a busy machine, short for the test.
	srv.Config.ReadTimeout = 500 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	for _, tc := range []struct{ name, path string }{
		{"generic", "/hooks/generic"},
		{"forge", "/hooks/github"},
	} {
		for _, cut := range []bool{true, false} {
			name := tc.name + "/slow"
			if cut {
				name = tc.name + "/cut"
			}
			t.Run(name, func(t *testing.T) {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				// Ten bytes of a hundred, then either the end of the
				// stream or nothing until the read timeout.
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n"+
					"Content-Type: application/json\r\nX-GitHub-Event: push\r\nContent-Length: 100\r\n\r\n{\"site\": \"", tc.path, token)
				if cut {
					conn.(*net.TCPConn).CloseWrite() //nolint:errcheck // the read below fails if it did
				}
				conn.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // a hung test fails here, not in go test's timeout
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400; body %s", resp.StatusCode, body)
				}
				if want := `{"error":"` + hooks.ErrBodyUnread.Error() + `"}`; strings.TrimSpace(string(body)) != want {
					t.Errorf("body %s, want %s", body, want)
				}
			})
		}
	}
}
