package bearer

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client: burst tries, one more per refill.
// Only clients that sent a wrong token are remembered, at most max of
// them, least recently failed forgotten first; one whose bucket is full
// again is the same as one never seen, so it is dropped as soon as it
// reaches the back of the list. A spray of addresses cannot grow memory
// past max, and forgetting an address gives it no more than a fresh one
// would have.
type limiter struct {
	burst  float64
	refill time.Duration
	max    int
	now    func() time.Time

	mu      sync.Mutex
	order   *list.List // of *bucket, most recently failed first
	clients map[string]*list.Element
}

type bucket struct {
	key    string
	tokens float64 // at at; may be negative, see fail
	at     time.Time
}

func newLimiter(burst int, refill time.Duration, maxClients int, now func() time.Time) *limiter {
	return &limiter{burst: float64(burst), refill: refill, max: maxClients, now: now,
		order: list.New(), clients: map[string]*list.Element{}}
}

// level is b's tokens at now.
func (l *limiter) level(b *bucket, now time.Time) float64 {
	return min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
}

// allow reports whether key may try a token now, and if not, how long
// until it may.
func (l *limiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.clients[key]
	if !ok {
		return 0, true
	}
	t := l.level(e.Value.(*bucket), l.now())
	if t >= 1 {
		return 0, true
	}
	return time.Duration((1 - t) * float64(l.refill)), false
}

// fail takes a token from key. Tries that passed allow together are all
// charged, even below zero, so a burst of concurrent guesses waits as
// long as they would have taken one by one.
func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if e, ok := l.clients[key]; ok {
		b := e.Value.(*bucket)
		b.tokens, b.at = l.level(b, now)-1, now
		l.order.MoveToFront(e)
		return
	}
	l.sweep(now)
	if l.order.Len() >= l.max {
		l.remove(l.order.Back())
	}
	l.clients[key] = l.order.PushFront(&bucket{key: key, tokens: l.burst - 1, at: now})
}

// sweep drops the least recently failed clients whose buckets are full.
func (l *limiter) sweep(now time.Time) {
	for e := l.order.Back(); e != nil && l.level(e.Value.(*bucket), now) >= l.burst; e = l.order.Back() {
		l.remove(e)
	}
}

func (l *limiter) remove(e *list.Element) {
	delete(l.clients, e.Value.(*bucket).key)
	l.order.Remove(e)
}

// clientKey is the client of a request's RemoteAddr: its IP, or for IPv6
// its /64, which one host usually has whole.
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return remote
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
