package serve_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/metrics"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
)

// TestObserve: every answer is reported with its site, status and body
// size — files, 404s, alias redirects, unknown hosts.
func TestObserve(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{"index.html": "hello"})
	var mu sync.Mutex
	var got []accesslog.Entry
	h := serve.New(serve.Options{Routes: mustRoutes(t, sites), Reader: e.pub,
		Observe: func(_ *http.Request, e accesslog.Entry) { mu.Lock(); got = append(got, e); mu.Unlock() }})
	for _, tc := range []struct {
		host, path string
		site       string
		status     int
		bytes      int64
	}{
		{"a.test", "/", "a", 200, 5},
		{"a.test", "/nope", "a", 404, -1},
		{"nobody.test", "/", "", 404, -1},
	} {
		got = nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path+"?token=x", nil))
		if len(got) != 1 {
			t.Fatalf("%s%s: %d observations", tc.host, tc.path, len(got))
		}
		o := got[0]
		if o.Site != tc.site || o.Status != tc.status || o.Host != tc.host || o.Path != tc.path || o.RawQuery != "token=x" || o.Duration <= 0 {
			t.Errorf("%s%s: observed %+v", tc.host, tc.path, o)
		}
		if want := int64(rec.Body.Len()); o.Bytes != want || tc.bytes >= 0 && o.Bytes != tc.bytes {
			t.Errorf("%s%s: %d bytes observed, %d written", tc.host, tc.path, o.Bytes, want)
		}
	}
}

// BenchmarkServeObserved is the cost of what every request pays for the
// metrics and the access log (JSON, as off a terminal).
func BenchmarkServeObserved(b *testing.B) {
	e := newEnv(b, time.Hour, true)
	e.live(b, "a", site.Production, map[string]string{"index.html": "<!doctype html><title>bench</title><p>hello</p>"})
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	for _, bc := range []struct {
		name    string
		observe func(*http.Request, accesslog.Entry)
	}{
		{"bare", nil},
		{"metrics", func(_ *http.Request, e accesslog.Entry) { m.Request(e.Site, e.Status, e.Bytes) }},
		{"metrics+accesslog", func(r *http.Request, e accesslog.Entry) {
			m.Request(e.Site, e.Status, e.Bytes)
			accesslog.Log(r.Context(), log, e)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := serve.New(serve.Options{Routes: mustRoutes(b, sites), Reader: e.pub, Observe: bc.observe})
			req := httptest.NewRequest(http.MethodGet, "http://a.test/?utm_source=x", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// TestObserveProxyCutOff: a proxied answer cut off midway (over the size
// limit while streaming) aborts the handler with a panic; it is counted
// all the same, with its site and the status already sent.
func TestObserveProxyCutOff(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: the limit applies while copying
		for range 10 {
			w.Write([]byte(strings.Repeat("y", 1000))) //nolint:errcheck // the limit cuts the client off
		}
	}))
	defer upstream.Close()
	opts := serve.RuleOptions{Proxy: true, ProxyPrivate: true, ProxyMaxBytes: 4096}
	withSites := []serve.Site{{Name: "a", Domains: []string{"a.test"}, Rules: opts}}
	e := newEnvSites(t, time.Hour, true, withSites)
	e.live(t, "a", site.Production, map[string]string{"index.html": "home", "_redirects": "/api/*  " + upstream.URL + "/:splat  200\n"})
	observed := make(chan accesslog.Entry, 1)
	h := serve.New(serve.Options{Routes: mustRoutes(t, withSites), Reader: e.pub,
		Observe: func(_ *http.Request, e accesslog.Entry) { observed <- e }})
	// A real server: only under one does ReverseProxy abort with a panic.
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/stream", nil)
	req.Host = "a.test"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // the body is cut off: that is the point
	resp.Body.Close()
	select {
	case o := <-observed:
		if o.Site != "a" || o.Status != http.StatusOK || o.Bytes < 1000 {
			t.Errorf("observed %+v; want the cut-off answer of site a", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off answer was not observed")
	}
}
