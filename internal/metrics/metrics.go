// Package metrics defines sitehost's Prometheus metrics on a registry it
// is given (no global state) and the hooks the rest of the server calls
// to feed them.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "sitehost"

// Metrics holds every metric sitehost exports.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	builds   *prometheus.CounterVec
	buildDur *prometheus.HistogramVec
	pubDur   *prometheus.HistogramVec
	uploaded *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	authFail *prometheus.CounterVec
}

// New registers sitehost's metrics, and the Go runtime's and the
// process's, on reg.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "Requests answered by the data plane, by site (\"\" for unknown hosts) and status class (2xx…5xx).",
		}, []string{"site", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_response_bytes_total",
			Help: "Response body bytes sent by the data plane, by site.",
		}, []string{"site"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "builds_total",
			Help: "Deploy attempts by site and result: success (built and live), reused (a tree built before), failure, superseded.",
		}, []string{"site", "result"}),
		buildDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "build_duration_seconds",
			Help:    "Time the build tool ran, by site and result.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"site", "result"}),
		pubDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "publish_duration_seconds",
			Help:    "Time from the end of a build to the deploy being live (upload and pointer flip), by site.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"site"}),
		uploaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "publish_uploaded_bytes_total",
			Help: "Bytes of new blobs written to the store by publishes, by site.",
		}, []string{"site"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_total",
			Help: "Webhook deliveries by forge and result (accepted, ignored, bad_request, unauthorized, unknown_repo, too_large, unavailable, …).",
		}, []string{"forge", "result"}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "admin_auth_failures_total",
			Help: "Admin token checks refused, by reason: wrong_token, or rate_limited (too many wrong tokens from the client; not checked).",
		}, []string{"reason"}),
	}
	// Both reasons show from the start, so an alert on a rate sees 0.
	m.authFail.WithLabelValues("wrong_token")
	m.authFail.WithLabelValues("rate_limited")
	reg.MustRegister(m.requests, m.bytes, m.builds, m.buildDur, m.pubDur, m.uploaded, m.webhooks, m.authFail,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4})
}

// statusClasses are the code label's values, indexed by status/100.
var statusClasses = [...]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Request counts one data-plane answer.
func (m *Metrics) Request(site string, status int, bytes int64) {
	class := "other"
	if i := status / 100; i >= 1 && i < len(statusClasses) {
		class = statusClasses[i]
	}
	m.requests.WithLabelValues(site, class).Inc()
	if bytes > 0 {
		m.bytes.WithLabelValues(site).Add(float64(bytes))
	}
}

// Attempt is a finished deploy attempt.
type Attempt struct {
	Site          string
	Result        string // success, reused, failure, superseded
	Build         time.Duration
	Publish       time.Duration // upload and pointer flip; 0 when not published
	BytesUploaded int64
}

// Deploy records a finished deploy attempt.
func (m *Metrics) Deploy(a Attempt) {
	m.builds.WithLabelValues(a.Site, a.Result).Inc()
	if a.Build > 0 {
		m.buildDur.WithLabelValues(a.Site, a.Result).Observe(a.Build.Seconds())
	}
	if a.Publish > 0 {
		m.pubDur.WithLabelValues(a.Site).Observe(a.Publish.Seconds())
	}
	if a.BytesUploaded > 0 {
		m.uploaded.WithLabelValues(a.Site).Add(float64(a.BytesUploaded))
	}
}

// Webhook counts one delivery to /hooks/{forge} by the status answered.
func (m *Metrics) Webhook(forge string, status int) {
	m.webhooks.WithLabelValues(forge, webhookResult(status)).Inc()
}

// AdminAuthFailure counts one refused admin token check.
func (m *Metrics) AdminAuthFailure(reason string) {
	m.authFail.WithLabelValues(reason).Inc()
}

func webhookResult(status int) string {
	switch status {
	case http.StatusAccepted:
		return "accepted"
	case http.StatusOK:
		return "ignored" // pings, duplicates, events sitehost does not act on
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "unauthorized"
	case http.StatusNotFound:
		return "unknown_repo"
	case http.StatusMethodNotAllowed:
		return "bad_method"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "status_" + strconv.Itoa(status)
}

// CacheStats are the blob cache's counters.
type CacheStats struct {
	MemoryHits, DiskHits, Misses uint64
}

// WatchCache exports the blob cache's hits and misses, read at scrape
// time.
func (m *Metrics) WatchCache(stats func() CacheStats) {
	m.watch("blob_cache_requests_total",
		"Blob reads by the data plane's cache, by outcome: memory or disk hit, or miss (read from the store).",
		prometheus.CounterValue, []string{"result"}, func(emit func(float64, ...string)) {
			s := stats()
			emit(float64(s.MemoryHits), "memory_hit")
			emit(float64(s.DiskHits), "disk_hit")
			emit(float64(s.Misses), "miss")
		})
}

// Certificate is a managed certificate's expiry.
type Certificate struct {
	Domain   string
	NotAfter time.Time
}

// WatchCertificates exports when each certificate expires, read at
// scrape time (alert on sitehost_certificate_expiry_timestamp_seconds -
// time() < 7 days: renewal should have happened 30 days before).
func (m *Metrics) WatchCertificates(certs func() []Certificate) {
	m.watch("certificate_expiry_timestamp_seconds", "When the TLS certificate of a domain expires, in Unix seconds.",
		prometheus.GaugeValue, []string{"domain"}, func(emit func(float64, ...string)) {
			for _, c := range certs() {
				if !c.NotAfter.IsZero() {
					emit(float64(c.NotAfter.Unix()), c.Domain)
				}
			}
		})
}

// SiteState is a site channel's sync state.
type SiteState struct {
	Site, Channel, State string
}

// WatchSites exports each channel's sync state as
// sitehost_channel_state{site,channel,state} 1, read at scrape time.
func (m *Metrics) WatchSites(states func() []SiteState) {
	m.watch("channel_state", "1 for each channel's current sync state (Synced, OutOfSync, Progressing, Failed, Pinned).",
		prometheus.GaugeValue, []string{"site", "channel", "state"}, func(emit func(float64, ...string)) {
			for _, s := range states() {
				emit(1, s.Site, s.Channel, s.State)
			}
		})
}

// watch registers a metric whose samples collect emits at scrape time.
func (m *Metrics) watch(name, help string, typ prometheus.ValueType, labels []string, collect func(emit func(float64, ...string))) {
	m.reg.MustRegister(&scrapeCollector{
		desc: prometheus.NewDesc(namespace+"_"+name, help, labels, nil), typ: typ, collect: collect,
	})
}

type scrapeCollector struct {
	desc    *prometheus.Desc
	typ     prometheus.ValueType
	collect func(emit func(float64, ...string))
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.collect(func(v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.desc, c.typ, v, labels...)
	})
}
