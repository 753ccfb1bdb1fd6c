package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sitehost/sitehost/internal/rules"
)

// proxyHopsHeader counts how many sitehost proxies a request went through,
// so a rule that proxies to its own site ends instead of looping.
const (
	proxyHopsHeader = "Sitehost-Proxy-Hops"
	maxProxyHops    = 3
)

// errPrivateTarget: a proxy target resolved to an address the site may not
// reach.
var errPrivateTarget = errors.New("proxy target is on a loopback, private or link-local address")

// proxies sends proxy rules' requests on. Two transports: one that refuses
// private addresses at dial time (after DNS, so a public name pointing at
// 127.0.0.1 is refused too) and one for sites that allow them.
type proxies struct {
	logger *slog.Logger
	write  WriteLimits

	once            sync.Once
	public, private http.RoundTripper
}

func (p *proxies) transports() {
	p.once.Do(func() {
		base := func(control func(network, address string, c syscall.RawConn) error) *http.Transport {
			d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
			return &http.Transport{
				DialContext:           d.DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          100,
				MaxIdleConnsPerHost:   16,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
			}
		}
		p.public = base(refusePrivate)
		p.private = base(nil)
	})
}

// refusePrivate is a dialer's Control: it sees the address actually dialed.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("dialing %s: %w", address, errPrivateTarget)
	}
	return nil
}

// serve proxies r to the rule's target. Responses are passed on as they
// are (no _headers, which apply to the deploy's own files), with
// hop-by-hop headers removed, within the site's time and size limits.
func (p *proxies) serve(w http.ResponseWriter, r *http.Request, st *Site, m rules.Match) {
	p.transports()
	target, err := url.Parse(m.To)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		http.Error(w, "502 bad gateway: bad proxy target", http.StatusBadGateway)
		return
	}
	hops, _ := strconv.Atoi(r.Header.Get(proxyHopsHeader))
	if hops >= maxProxyHops {
		http.Error(w, "508 loop detected: the proxy rule leads back here", http.StatusLoopDetected)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), st.Rules.ProxyTimeout)
	defer cancel()
	rt := p.public
	if st.Rules.ProxyPrivate {
		rt = p.private
	}
	limit := st.Rules.ProxyMaxBytes
	rp := &httputil.ReverseProxy{
		Transport: rt,
		ErrorLog:  slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn),
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			pr.SetXForwarded()
			pr.Out.Header.Set(proxyHopsHeader, strconv.Itoa(hops+1))
			for k, v := range m.Rule.Headers {
				pr.Out.Header.Set(k, v)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.ContentLength > limit {
				return fmt.Errorf("response of %d bytes is over the limit of %d: %w", resp.ContentLength, limit, errTooLarge)
			}
			resp.Body = &limitedBody{ReadCloser: resp.Body, left: limit}
			// The target may have taken most of the write timeout to
			// answer: the body gets its own, sized to it.
			size := resp.ContentLength
			if size < 0 {
				size = limit
			}
			p.write.extend(w, size)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			p.logger.Warn("proxying", "site", st.Name, "rule", fmt.Sprintf("%s:%d", m.Rule.Source, m.Rule.Line), "target", target.Redacted(), "err", err)
			p.write.extend(w, 0)
			http.Error(w, fmt.Sprintf("%d %s", status, http.StatusText(status)), status)
		},
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
}

var errTooLarge = errors.New("proxy response too large")

// limitedBody fails a response body that runs past the limit, so the copy
// to the client stops there.
type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit: only the end of the body may follow.
		var one [1]byte
		if n, err := b.ReadCloser.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
