package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/serve"
)

// listener is one of the server's listeners with its HTTP server.
type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// middleware wraps a handler.
type middleware func(http.Handler) http.Handler

// pipeline is middleware in the order a request meets it, outermost first.
type pipeline []middleware

// then ends p with h.
func (p pipeline) then(h http.Handler) http.Handler {
	for i := len(p) - 1; i >= 0; i-- {
		h = p[i](h)
	}
	return h
}

// listeners builds every listener's handler: the whole middleware order of
// each, outermost first, is here and nowhere else.
func (s *server) listeners() []listener {
	d, rec := s.data, recoverPanics(s.log)
	// The control host's requests go to the admin handler with its own
	// access log, as the admin listener's do.
	control := s.controlHost(accessLog("admin", s.observeAdmin)(s.endOnDrain(s.admin)))

	// admin: recover → access log → API, dashboard, webhooks, probes.
	admin := listener{"admin", s.adminLn, s.newAdminServer(pipeline{rec, accessLog("admin", s.observeAdmin), s.endOnDrain}.then(s.admin))}
	if !s.cfg.Server.Serves() {
		return []listener{admin} // a builder: no data plane
	}
	if s.certs == nil {
		// http: recover → control host → observe → resolve → serve.
		public := pipeline{rec, control, d.Observe, d.Resolve}.then(d.Serve())
		return []listener{{"http", s.httpLn, s.newPublicServer(public)}, admin}
	}
	// http with HTTPS on: recover → ACME HTTP-01 challenges → redirect to
	// HTTPS (hosts the routes resolve, and the control host; 404 for others).
	redirect := pipeline{rec, s.certs.HTTPChallengeHandler}.then(http.HandlerFunc(s.redirectHTTPS))
	// https: recover → HSTS → control host → observe → resolve → serve.
	// TLS-ALPN challenges and the on-demand certificate decision (the
	// same resolver) happen in the handshake (certs, onDemand).
	public := pipeline{rec, hsts, control, d.Observe, d.Resolve}.then(d.Serve())
	secure := s.newPublicServer(public)
	secure.TLSConfig = s.certs.TLSConfig()
	return []listener{{"http", s.httpLn, s.newPublicServer(redirect)}, admin, {"https", s.httpsLn, secure}}
}

// accessLog calls observe after each answer (accesslog.Handler).
func accessLog(name string, observe func(*http.Request, accesslog.Entry)) middleware {
	return func(h http.Handler) http.Handler { return accesslog.Handler(name, h, observe) }
}

// controlHost routes server.control_host to admin, so forges can reach
// the webhooks from outside, and every other host on.
func (s *server) controlHost(admin http.Handler) middleware {
	control := s.cfg.Server.ControlHost
	return func(next http.Handler) http.Handler {
		if control == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if serve.NormalizeHost(r.Host) != control {
				next.ServeHTTP(w, r)
				return
			}
			// Metrics need no token: they stay on the admin listener, which
			// is loopback unless said otherwise.
			if r.URL.Path == "/metrics" {
				http.Error(w, "404 not found: /metrics is served on the admin listener only", http.StatusNotFound)
				return
			}
			// The admin listener's write timeout, not the data plane's
			// (streams set their own).
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(adminWriteTimeout)) //nolint:errcheck // not every writer has deadlines
			admin.ServeHTTP(w, r)
		})
	}
}

// redirectHTTPS is the plain HTTP listener once HTTPS is on: a host
// sitehost serves is sent to HTTPS with 308 (method and body kept); any
// other host gets 404.
func (s *server) redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	t, ok := s.rt.Load().routes.Resolve(r.Host)
	host := t.Host
	if !ok && host != s.cfg.Server.ControlHost {
		http.Error(w, serve.NoSiteBody, http.StatusNotFound)
		return
	}
	target := host
	if port := portOf(s.httpsLn.Addr()); port != "443" {
		target = net.JoinHostPort(host, port)
	}
	serve.Redirect(w, "https://"+target+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// hsts tells browsers to use HTTPS only: every response on the HTTPS
// listener comes after a handshake with a valid certificate for its host.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// adminWriteTimeout bounds an admin answer (the API, the dashboard);
// log streams and waiting syncs set their own deadlines.
const adminWriteTimeout = 10 * time.Minute

// newAdminServer serves the admin listener.
func (s *server) newAdminServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// newPublicServer serves a data plane listener with server.limits: the
// write timeout covers small answers, and each file body extends it by its
// size at the slowest rate allowed (serve.WriteLimits), so a slow reader
// of a small file is let go in seconds.
func (s *server) newPublicServer(h http.Handler) *http.Server {
	l := s.cfg.Server.Limits
	return &http.Server{
		Handler:           h,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       max(30*time.Second, l.ReadHeaderTimeout),
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// recoverPanics turns a panic in a handler into a 500 and a log line.
func recoverPanics(logger *slog.Logger) middleware {
	return func(h http.Handler) http.Handler {
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
}
