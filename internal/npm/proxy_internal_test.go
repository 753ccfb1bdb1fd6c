package npm

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// origin is a server that answers "ok PATH" and counts its connections.
func origin(t *testing.T, tls bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

// startProxy serves a proxy to registry on 127.0.0.1, closed with the test.
func startProxy(t *testing.T, registry string) (*proxy, *url.URL) {
	t.Helper()
	px, err := newProxy(registry, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.serve(ln)
	t.Cleanup(px.close)
	return px, &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

func get(t *testing.T, client *http.Client, u string) (int, string, error) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// TestProxyHTTPRegistry: requests to the registry pass, others get a 403
// naming the host, and never reach it.
func TestProxyHTTPRegistry(t *testing.T) {
	reg, _ := origin(t, false)
	other, otherConns := origin(t, false)
	px, pu := startProxy(t, reg.URL+"/")
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	otherHost := strings.TrimPrefix(other.URL, "http://")

	if code, body, err := get(t, client, reg.URL+"/is-number"); err != nil || code != 200 || body != "ok /is-number" {
		t.Fatalf("the registry through the proxy: %d %q %v", code, body, err)
	}
	for _, u := range []string{other.URL + "/x.tgz", "http://169.254.169.254/latest/meta-data/"} {
		code, body, err := get(t, client, u)
		parsed, _ := url.Parse(u)
		host := parsed.Host
		if parsed.Port() == "" {
			host += ":80"
		}
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, host+" refused") {
			t.Errorf("%s: %d %q %v, want 403 naming %s", u, code, body, err, host)
		}
	}
	if n := otherConns.Load(); n != 0 {
		t.Errorf("the other server got %d connections", n)
	}
	if r := px.Refused(); len(r) != 2 || r[0] != otherHost {
		t.Errorf("Refused() = %v", r)
	}
	// CONNECT is for https registries only: a tunnel to an http one
	// could carry anything.
	tunnel := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // never gets that far
	if _, _, err := get(t, tunnel, "https://"+strings.TrimPrefix(reg.URL, "http://")+"/"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT to an http registry: %v, want Forbidden", err)
	}

	raw := func(req string) string {
		c, err := net.Dial("tcp", pu.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, req) //nolint:errcheck // the response tells
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	// Not a proxy request: no target named in full.
	if line := raw("GET /is-number HTTP/1.1\r\nHost: " + strings.TrimPrefix(reg.URL, "http://") + "\r\n\r\n"); !strings.Contains(line, "403") {
		t.Errorf("origin-form request: %q, want 403", line)
	}
	if line := raw("GET " + reg.URL + "/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2*proxyMaxHeader) + "\r\n\r\n"); !strings.Contains(line, "431") {
		t.Errorf("oversized header: %q, want 431", line)
	}
}

// TestProxyHTTPSRegistry: CONNECT to the registry is a tunnel (TLS end to
// end, with the registry's own certificate); CONNECT elsewhere, or plain
// http to the registry's host, is refused; close ends open tunnels.
func TestProxyHTTPSRegistry(t *testing.T) {
	reg, _ := origin(t, true)
	other, otherConns := origin(t, true)
	px, pu := startProxy(t, reg.URL+"/")
	pool := x509.NewCertPool()
	pool.AddCert(reg.Certificate())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool}}}

	if code, body, err := get(t, client, reg.URL+"/is-number"); err != nil || code != 200 || body != "ok /is-number" {
		t.Fatalf("the registry through the tunnel: %d %q %v", code, body, err)
	}
	otherHost := strings.TrimPrefix(other.URL, "https://")
	if _, _, err := get(t, client, other.URL+"/x.tgz"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT %s: %v, want Forbidden", otherHost, err)
	}
	if n := otherConns.Load(); n != 0 {
		t.Errorf("the other server got %d connections", n)
	}
	regHost := strings.TrimPrefix(reg.URL, "https://")
	if code, _, err := get(t, client, "http://"+regHost+"/is-number"); err != nil || code != http.StatusForbidden {
		t.Errorf("plain http to an https registry: %d %v, want 403", code, err)
	}
	if r := px.Refused(); len(r) != 2 || r[0] != otherHost || r[1] != regHost {
		t.Errorf("Refused() = %v, want [%s %s]", r, otherHost, regHost)
	}

	// A tunnel left open ends with the proxy.
	c, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", regHost, regHost)
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); !strings.Contains(line, "200") {
		t.Fatalf("CONNECT: %q", line)
	}
	br.ReadString('\n') //nolint:errcheck // the blank line
	px.close()
	if n, err := br.Read(make([]byte, 1)); err == nil {
		t.Errorf("the tunnel is open after close: read %d bytes", n)
	}
}
