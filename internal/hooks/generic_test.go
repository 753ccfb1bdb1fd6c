package hooks_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/hooks"
	"github.com/sitehost/sitehost/internal/site"
)

const token = "s3cret-token-0123456789abcdef0123"

// fakeDispatcher knows a fixed set of sites and records every trigger.
type fakeDispatcher struct {
	known map[site.Name]bool

	mu        sync.Mutex
	triggered []site.Name
}

var _ hooks.Dispatcher = (*fakeDispatcher)(nil)

func (d *fakeDispatcher) Trigger(name site.Name) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.triggered = append(d.triggered, name)
	if !d.known[name] {
		return fmt.Errorf("%w %q", hooks.ErrUnknownSite, name)
	}
	return nil
}

func (d *fakeDispatcher) names() []site.Name {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.triggered)
}

func TestGeneric(t *testing.T) {
	tests := []struct {
		name       string
		token      string // configured token; "" means the default
		noToken    bool   // configure an empty token
		method     string
		auth       string
		body       string
		wantStatus int
		wantKey    string // "message" or "error"
		wantMsg    string // substring of the message
		wantSites  []site.Name
		wantHeader map[string]string
	}{
		{
			name: "known site", auth: "Bearer " + token, body: `{"site": "blog"}`,
			wantStatus: http.StatusAccepted, wantKey: "message", wantMsg: "sync of blog requested",
			wantSites: []site.Name{"blog"},
		},
		{
			name: "no authorization", body: `{"site": "blog"}`,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "bearer token",
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="sitehost"`},
		},
		{
			name: "lowercase scheme", auth: "bearer " + token, body: `{"site": "blog"}`,
			wantStatus: http.StatusAccepted, wantKey: "message", wantMsg: "sync of blog requested",
			wantSites: []site.Name{"blog"},
		},
		{
			name: "wrong token", auth: "Bearer nope", body: `{"site": "blog"}`,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "bearer token",
		},
		{
			name: "basic scheme", auth: "Basic " + token, body: `{"site": "blog"}`,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "bearer token",
		},
		{
			name: "empty configured token", noToken: true, auth: "Bearer ", body: `{"site": "blog"}`,
			wantStatus: http.StatusUnauthorized, wantKey: "error", wantMsg: "bearer token",
		},
		{
			name: "malformed JSON", auth: "Bearer " + token, body: `{"site": `,
			wantStatus: http.StatusBadRequest, wantKey: "error", wantMsg: "malformed JSON",
		},
		{
			name: "unknown field", auth: "Bearer " + token, body: `{"site": "blog", "ref": "main"}`,
			wantStatus: http.StatusBadRequest, wantKey: "error", wantMsg: "unknown field",
		},
		{
			name: "missing site", auth: "Bearer " + token, body: `{}`,
			wantStatus: http.StatusBadRequest, wantKey: "error", wantMsg: `missing "site"`,
		},
		{
			name: "body over 1 MiB", auth: "Bearer " + token,
			body:       `{"site": "` + strings.Repeat("a", hooks.MaxBody) + `"}`,
			wantStatus: http.StatusRequestEntityTooLarge, wantKey: "error", wantMsg: "body over",
		},
		{
			name: "unknown site", auth: "Bearer " + token, body: `{"site": "nosuch"}`,
			wantStatus: http.StatusNotFound, wantKey: "error", wantMsg: `no site named "nosuch"`,
			wantSites: []site.Name{"nosuch"},
		},
		{
			name: "GET", method: http.MethodGet, auth: "Bearer " + token,
			wantStatus: http.StatusMethodNotAllowed, wantKey: "error", wantMsg: "use POST",
			wantHeader: map[string]string{"Allow": "POST"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDispatcher{known: map[site.Name]bool{"blog": true}}
			g := &hooks.Generic{Guard: bearer.New(bearer.Options{Token: token}), Dispatch: d, Logger: slog.New(slog.DiscardHandler)}
			if tt.noToken {
				g.Guard = bearer.New(bearer.Options{})
			}
			srv := httptest.NewServer(g)
			defer srv.Close()

			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/hooks/generic", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			checkJSONMessage(t, resp.Body, tt.wantKey, tt.wantMsg)
			if got := d.names(); !slices.Equal(got, tt.wantSites) {
				t.Errorf("triggered %q, want %q", got, tt.wantSites)
			}
		})
	}
}

// checkJSONMessage decodes a {key: msg} body and checks it holds exactly
// that key and a message containing want.
func checkJSONMessage(t *testing.T, r io.Reader, key, want string) {
	t.Helper()
	var body map[string]string
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		t.Fatalf("decoding body: %v", err)
	}
	if len(body) != 1 {
		t.Errorf("body = %v, want only %q", body, key)
	}
	msg, ok := body[key]
	if !ok {
		t.Fatalf("body = %v, want key %q", body, key)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("%s = %q, want it to contain %q", key, msg, want)
	}
}

// TestGenericSlowsWrongTokens: after five wrong tokens the generic hook
// answers 429 with Retry-After, even to the right token, and triggers
// nothing; its Guard's clock earns the client one more try a second.
func TestGenericSlowsWrongTokens(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	d := &fakeDispatcher{known: map[site.Name]bool{"blog": true}}
	g := &hooks.Generic{Guard: bearer.New(bearer.Options{Token: token, Now: func() time.Time { return at }}), Dispatch: d}
	post := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/hooks/generic", strings.NewReader(`{"site": "blog"}`))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	for i := range 5 {
		if w := post("Bearer guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, w.Code)
		}
	}
	w := post("Bearer " + token)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("right token after 5 wrong: %d, Retry-After %q; want 429, 1", w.Code, w.Header().Get("Retry-After"))
	}
	checkJSONMessage(t, w.Body, "error", "too many wrong tokens")
	if got := d.names(); len(got) != 0 {
		t.Errorf("triggered %q while limited", got)
	}
	at = at.Add(time.Second)
	if w := post("Bearer " + token); w.Code != http.StatusAccepted {
		t.Errorf("right token a second later: %d, want 202", w.Code)
	}
}
