package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestScrape feeds every metric and reads them back in the text format a
// Prometheus server scrapes.
func TestScrape(t *testing.T) {
	m := New(prometheus.NewRegistry())
	m.Request("blog", 200, 1234)
	m.Request("blog", 304, 0)
	m.Request("", 404, 50)
	m.Deploy(Attempt{Site: "blog", Result: "success", Build: 2 * time.Second, Publish: 300 * time.Millisecond, BytesUploaded: 4096})
	m.Deploy(Attempt{Site: "blog", Result: "failure", Build: time.Second})
	m.Webhook("github", 202)
	m.Webhook("github", 401)
	m.WatchCache(func() CacheStats { return CacheStats{MemoryHits: 7, DiskHits: 2, Misses: 1} })
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	m.WatchCertificates(func() []Certificate {
		return []Certificate{{Domain: "blog.example.com", NotAfter: exp}, {Domain: "pending.example.com"}}
	})
	m.WatchSites(func() []SiteState { return []SiteState{{"blog", "production", "Synced"}} })
	refused := m.WatchConnections(func() int { return 3 })
	refused("per_ip")
	refused("per_ip")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		`sitehost_http_requests_total{code="2xx",site="blog"} 1`,
		`sitehost_http_requests_total{code="3xx",site="blog"} 1`,
		`sitehost_http_requests_total{code="4xx",site=""} 1`,
		`sitehost_http_response_bytes_total{site="blog"} 1234`,
		`sitehost_builds_total{result="success",site="blog"} 1`,
		`sitehost_builds_total{result="failure",site="blog"} 1`,
		`sitehost_build_duration_seconds_count{result="success",site="blog"} 1`,
		`sitehost_publish_duration_seconds_sum{site="blog"} 0.3`,
		`sitehost_publish_uploaded_bytes_total{site="blog"} 4096`,
		`sitehost_webhook_deliveries_total{forge="github",result="accepted"} 1`,
		`sitehost_webhook_deliveries_total{forge="github",result="unauthorized"} 1`,
		`sitehost_blob_cache_requests_total{result="memory_hit"} 7`,
		`sitehost_blob_cache_requests_total{result="miss"} 1`,
		`sitehost_certificate_expiry_timestamp_seconds{domain="blog.example.com"} 1.798859045e+09`,
		`sitehost_channel_state{channel="production",site="blog",state="Synced"} 1`,
		`sitehost_connections_open 3`,
		`sitehost_connections_refused_total{reason="per_ip"} 2`,
		`sitehost_connections_refused_total{reason="total"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(text, "pending.example.com") {
		t.Error("a domain without a certificate has an expiry")
	}
}

// TestAdminAuthFailures: refused admin token checks are counted by
// reason, and both reasons are exported before the first one.
func TestAdminAuthFailures(t *testing.T) {
	m := New(prometheus.NewRegistry())
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for _, want := range []string{
		`sitehost_admin_auth_failures_total{reason="rate_limited"} 0`,
		`sitehost_admin_auth_failures_total{reason="wrong_token"} 0`,
	} {
		if text := scrape(); !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	m.AdminAuthFailure("wrong_token")
	m.AdminAuthFailure("wrong_token")
	m.AdminAuthFailure("rate_limited")
	for _, want := range []string{
		`sitehost_admin_auth_failures_total{reason="rate_limited"} 1`,
		`sitehost_admin_auth_failures_total{reason="wrong_token"} 2`,
	} {
		if text := scrape(); !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func BenchmarkRequest(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Request("blog", 200, 1234)
	}
}
