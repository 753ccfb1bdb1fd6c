package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/accesslog"
)

// listener is one of the server's listeners with its HTTP server.
type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// listeners builds every listener's handler: the whole middleware order of
// each, outermost first, is here and nowhere else.
func (s *server) listeners() []listener {
	// admin: recover → access log → API, dashboard, webhooks, probes.
	// admin (and control_host): access log → API, dashboard, webhooks, probes.
	api := accesslog.Handler("admin", s.admin, s.observeAdmin)
	admin := listener{"admin", s.adminLn, s.newHTTPServer(recoverPanics(api, s.log))}
	if s.certs == nil {
		// http: recover → control host → sites (observed, resolved, served).
		public := recoverPanics(s.controlHost(api, s.data), s.log)
		return []listener{{"http", s.httpLn, s.newHTTPServer(public)}, admin}
	}
	// http with HTTPS on: recover → ACME HTTP-01 challenges → redirect
	// to HTTPS for hosts sitehost serves, 404 for others.
	redirect := recoverPanics(s.certs.HTTPChallengeHandler(http.HandlerFunc(s.redirectHTTPS)), s.log)
	// https: recover → HSTS → control host → sites. TLS-ALPN challenges
	// and the certificate decision happen in the handshake (certs).
	secure := s.newHTTPServer(recoverPanics(hsts(s.controlHost(api, s.data)), s.log))
	secure.TLSConfig = s.certs.TLSConfig()
	return []listener{{"http", s.httpLn, s.newHTTPServer(redirect)}, admin, {"https", s.httpsLn, secure}}
}

// controlHost routes server.control_host to admin, so forges
// can reach the webhooks from outside, and every other host to next.
func (s *server) controlHost(admin, next http.Handler) http.Handler {
	control := s.cfg.Server.ControlHost
	if control == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestHost(r) != control {
			next.ServeHTTP(w, r)
			return
		}
		// Metrics need no token: they stay on the admin listener, which
		// is loopback unless said otherwise.
		if r.URL.Path == "/metrics" {
			http.Error(w, "404 not found: /metrics is served on the admin listener only", http.StatusNotFound)
			return
		}
		admin.ServeHTTP(w, r)
	})
}

// requestHost is r's host without port or trailing dot, lowercased.
func requestHost(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(host, ".")
}

// redirectHTTPS is the plain HTTP listener once HTTPS is on: a host
// sitehost serves is sent to HTTPS with 308 (method and body kept); any
// other host gets 404.
func (s *server) redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := requestHost(r)
	if !s.data.Serves(host) && host != s.cfg.Server.ControlHost {
		http.Error(w, "404 not found: no site is served at "+host, http.StatusNotFound)
		return
	}
	target := host
	if port := portOf(s.httpsLn.Addr()); port != "443" {
		target = net.JoinHostPort(host, port)
	}
	http.Redirect(w, r, "https://"+target+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// hsts tells browsers to use HTTPS only: every response on the HTTPS
// listener comes after a handshake with a valid certificate for its host.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

func (s *server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      10 * time.Minute, // large files on slow links
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// recoverPanics turns a panic in a handler into a 500 and a log line.
func recoverPanics(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("panic serving request", "host", r.Host, "path", r.URL.Path, "panic", fmt.Sprint(v))
				http.Error(w, "500 internal server error", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}
