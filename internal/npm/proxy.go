package npm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits of the proxy: what npm sends is small (GETs with a few headers),
// and a request that is slow to arrive is not npm's.
const (
	proxyMaxHeader   = 64 << 10
	proxyMaxBody     = 1 << 20
	proxyReadHeader  = 30 * time.Second
	proxyDialTimeout = 30 * time.Second
)

// proxy is an install's only way to the network: a forward proxy that
// passes on what goes to the registry's scheme://host:port and refuses
// the rest with a 403 naming the host refused. The lockfile is the
// site's: its "resolved" URLs may name any host (the server's internal
// network, a cloud's metadata address), and npm fetches what they name.
// For an https registry it tunnels CONNECT registry-host:port (TLS stays
// npm's, end to end); for an http one it forwards absolute-form requests.
// It dials from the server's network.
type proxy struct {
	addr   string // the registry's host:port, the default port filled in
	https  bool
	srv    *http.Server
	dialer net.Dialer
	fwd    *httputil.ReverseProxy
	tr     *http.Transport

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
	refused []string
	closed  bool
}

// newProxy is a proxy to registry, to serve on a listener (serve).
func newProxy(registry string, log *slog.Logger) (*proxy, error) {
	u, err := url.Parse(registry)
	if err != nil {
		return nil, fmt.Errorf("npm: registry %q: %w", registry, err)
	}
	port, err := registryPort(registry)
	if err != nil {
		return nil, err
	}
	p := &proxy{
		addr:    net.JoinHostPort(strings.ToLower(u.Hostname()), fmt.Sprint(port)),
		https:   u.Scheme == "https",
		dialer:  net.Dialer{Timeout: proxyDialTimeout},
		tunnels: map[net.Conn]struct{}{},
	}
	p.tr = &http.Transport{
		Proxy:                 nil, // the server's own proxy settings are not the install's
		DialContext:           p.dialRegistry,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
	p.fwd = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", p.addr
		},
		Transport: p.tr,
		ErrorLog:  slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: proxyReadHeader,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    proxyMaxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return p, nil
}

// serve serves ln until close.
func (p *proxy) serve(ln net.Listener) {
	p.srv.Serve(ln) //nolint:errcheck // ErrServerClosed, or the listener's end: close tells
}

// close ends every connection: the listener, requests, tunnels.
func (p *proxy) close() {
	p.srv.Close() //nolint:errcheck // closing
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	p.tr.CloseIdleConnections()
}

// Refused are the hosts refused so far, each once.
func (p *proxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		if !p.https || !p.allowed(r.Host, "443") {
			p.refuse(w, r.Host, "443")
			return
		}
		p.tunnel(w, r)
		return
	}
	// A proxy request names its target in full (absolute form).
	if r.URL.Scheme != "http" || r.URL.Host == "" || p.https || !p.allowed(r.URL.Host, "80") {
		target := r.URL.Host
		if target == "" {
			target = r.Host
		}
		p.refuse(w, target, "80")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, proxyMaxBody)
	p.fwd.ServeHTTP(w, r)
}

// allowed reports whether target (host[:port]) is the registry.
func (p *proxy) allowed(target, defaultPort string) bool {
	return normalize(target, defaultPort) == p.addr
}

func normalize(target, defaultPort string) string {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		host, port = strings.Trim(target, "[]"), defaultPort
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

func (p *proxy) refuse(w http.ResponseWriter, target, defaultPort string) {
	host := normalize(target, defaultPort)
	p.mu.Lock()
	if !slices.Contains(p.refused, host) {
		p.refused = append(p.refused, host)
	}
	p.mu.Unlock()
	http.Error(w, fmt.Sprintf("sitehost: an npm install reaches only its registry %s: %s refused", p.addr, host), http.StatusForbidden)
}

// dialRegistry dials the registry, whatever address the request named.
func (p *proxy) dialRegistry(ctx context.Context, network, _ string) (net.Conn, error) {
	return p.dialer.DialContext(ctx, network, p.addr)
}

// tunnel splices npm's connection and one to the registry: TLS is
// between npm and the registry.
func (p *proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	up, err := p.dialRegistry(r.Context(), "tcp", "")
	if err != nil {
		http.Error(w, fmt.Sprintf("sitehost: reaching the registry %s: %v", p.addr, err), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "sitehost: cannot tunnel", http.StatusInternalServerError)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	defer p.untrack(c, up)
	c.SetDeadline(time.Time{}) //nolint:errcheck // the server's read deadlines are not the tunnel's
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, brw.Reader) //nolint:errcheck // either side's end ends the tunnel
		done <- struct{}{}
	}()
	go func() {
		io.Copy(c, up) //nolint:errcheck // as above
		done <- struct{}{}
	}()
	<-done
}

// track keeps a tunnel's connections for close; false: closing already.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.tunnels, c)
	}
}

// refusedHint is what an install's error gets when the proxy refused a
// host: npm's own message may name only the URL.
func (p *proxy) refusedHint() string {
	r := p.Refused()
	if len(r) == 0 {
		return ""
	}
	return fmt.Sprintf("\n(the install reaches only the registry %s, through sitehost's proxy: refused %s)", p.addr, strings.Join(r, ", "))
}
