package serve

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ConnLimits bound the connections a listener keeps open.
type ConnLimits struct {
	PerIP int // per client address; 0 = no limit
	Total int // in all; 0 = no limit
	// Refused, when set, is told each connection closed at once, and why:
	// "per_ip" or "total".
	Refused func(reason string)
}

// ConnLimiter applies ConnLimits to the listeners it wraps, counting
// their connections together: a client has PerIP in all, not per listener.
type ConnLimiter struct {
	limits ConnLimits

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

// NewConnLimiter returns a limiter of l.
func NewConnLimiter(l ConnLimits) *ConnLimiter {
	return &ConnLimiter{limits: l, perIP: make(map[netip.Addr]int)}
}

// Open is the number of connections open on the wrapped listeners.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Listener returns ln with the limits applied: a connection over a limit
// is closed as soon as it is accepted, before anything is read from it,
// and Accept goes on to the next. The client address is the TCP peer's:
// behind a proxy, every client is the proxy.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, l: l}
}

type limitListener struct {
	net.Listener
	l *ConnLimiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(c)
		if reason := l.l.admit(ip); reason != "" {
			c.Close()
			if l.l.limits.Refused != nil {
				l.l.limits.Refused(reason)
			}
			continue
		}
		return &limitConn{Conn: c, l: l.l, ip: ip}, nil
	}
}

// admit counts a new connection from ip, or says which limit it is over.
func (l *ConnLimiter) admit(ip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.limits.Total > 0 && l.total >= l.limits.Total:
		return "total"
	case l.limits.PerIP > 0 && l.perIP[ip] >= l.limits.PerIP:
		return "per_ip"
	}
	l.total++
	l.perIP[ip]++
	return ""
}

func (l *ConnLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// peerIP is c's remote address without its port; IPv4-mapped IPv6
// addresses count as the IPv4 address they are.
func peerIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	l    *ConnLimiter
	ip   netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// ReadFrom lets net/http reach *net.TCPConn's: a file body goes out with
// sendfile(2), not through a buffer (a wrapper without it served 1 MiB
// files a third slower).
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close the connection before it closes it,
// as it does with a bare *net.TCPConn.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// WriteLimits size the time an answer may take to write to its body: a
// slow reader of a small file is let go in seconds, and a big file still
// has the time it needs at a reasonable rate.
type WriteLimits struct {
	// Timeout is the time any answer may take (the http.Server's
	// WriteTimeout should be the same, for answers that are not files).
	Timeout time.Duration
	// MinRate, in bytes per second, adds size/MinRate for a body of size
	// bytes; 0 adds nothing.
	MinRate int64
}

// deadline is when writing a body of size bytes, starting now, must be
// done; the zero time when no limit is set.
func (l WriteLimits) deadline(size int64) time.Time {
	if l.Timeout <= 0 {
		return time.Time{}
	}
	d := l.Timeout
	if l.MinRate > 0 && size > 0 {
		d += time.Duration(float64(size) / float64(l.MinRate) * float64(time.Second))
	}
	return time.Now().Add(d)
}

// extend gives w's connection until l's deadline for size bytes to write
// them; a writer without deadlines keeps what it has.
func (l WriteLimits) extend(w http.ResponseWriter, size int64) {
	if t := l.deadline(size); !t.IsZero() {
		http.NewResponseController(w).SetWriteDeadline(t) //nolint:errcheck // not every writer has deadlines
	}
}
