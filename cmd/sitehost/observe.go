package main

import (
	"log/slog"
	"net/http"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/metrics"
	"github.com/sitehost/sitehost/internal/site"
)

// observe counts and logs one answer of the data plane.
func (s *server) observe(r *http.Request, e accesslog.Entry) {
	s.metrics.Request(e.Site, e.Status, e.Bytes)
	if s.accessLog != nil {
		e.Listener = "http"
		if r.TLS != nil {
			e.Listener = "https"
		}
		accesslog.Log(r.Context(), s.accessLog, e)
	}
}

// observeAdmin logs one answer of the admin listener; probes and scrapes
// only at debug level, they come every few seconds.
func (s *server) observeAdmin(r *http.Request, e accesslog.Entry) {
	if s.accessLog == nil {
		return
	}
	switch e.Path {
	case "/metrics", "/healthz", "/readyz":
		if !s.accessLog.Enabled(r.Context(), slog.LevelDebug) {
			return
		}
	}
	accesslog.Log(r.Context(), s.accessLog, e)
}

// recordAttempt feeds a finished deploy attempt to the metrics.
func (s *server) recordAttempt(a journal.Snapshot) {
	result := "failure"
	switch {
	case a.State == site.OutcomeLive && a.Reused:
		result = "reused"
	case a.State == site.OutcomeLive:
		result = "success"
	case a.State == site.OutcomeSuperseded:
		result = "superseded"
	}
	t := a.Timings()
	m := metrics.Attempt{Site: string(a.Site), Result: result, Build: t.Build, BytesUploaded: a.BytesUploaded}
	if a.State == site.OutcomeLive {
		m.Publish = t.Upload + t.Publish
	}
	s.metrics.Deploy(m)
}

// channelStates is every channel's sync state, for the metrics.
func (s *server) channelStates() []metrics.SiteState {
	var out []metrics.SiteState
	for _, st := range s.loop.Status() {
		if _, ok := st.Channels[site.Production]; !ok && st.State != "" {
			out = append(out, metrics.SiteState{Site: string(st.Site), Channel: string(site.Production), State: string(st.State)})
		}
		for c, cs := range st.Channels {
			if cs.State != "" {
				out = append(out, metrics.SiteState{Site: string(st.Site), Channel: string(c), State: string(cs.State)})
			}
		}
	}
	return out
}

// certExpiries are the managed domains' certificate expiry times.
func (s *server) certExpiries() []metrics.Certificate {
	var out []metrics.Certificate
	for _, d := range s.rt.Load().certNames {
		out = append(out, metrics.Certificate{Domain: d, NotAfter: s.certs.Status(d).NotAfter})
	}
	return out
}
