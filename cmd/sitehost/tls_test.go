package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gittest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/pebbletest"
)

// tlsConfig is a config with HTTPS on, its ACME CA the Pebble server p.
// httpAddr and httpsAddr "" take the ports Pebble validates on.
func tlsConfig(t *testing.T, p *pebbletest.Server, dataDir, httpAddr, httpsAddr, serverYAML, sitesYAML string) *config.Config {
	t.Helper()
	if httpAddr == "" {
		httpAddr = fmt.Sprintf("127.0.0.1:%d", p.HTTPPort)
	}
	if httpsAddr == "" {
		httpsAddr = fmt.Sprintf("127.0.0.1:%d", p.TLSPort)
	}
	path := filepath.Join(t.TempDir(), "sites.yaml")
	doc := fmt.Sprintf(`server:
  data_dir: %q
  http: %q
  https: %q
  admin: "127.0.0.1:0"
  preview_domain: preview.test
  poll_interval: 0s
  api_token_env: TEST_TOKEN
  acme: {email: ops@example.org, ca: %q, ca_root: %q}
%ssites:
%s`, dataDir, httpAddr, httpsAddr, p.DirectoryURL, p.APIRootFile, serverYAML, sitesYAML)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("tls config: %v\n%s", err, doc)
	}
	return cfg
}

func startTLSServer(t *testing.T, cfg *config.Config, env map[string]string, opts serverOptions) *server {
	t.Helper()
	return startServerWith(t, cfg, env, opts)
}

// httpsClient trusts Pebble's issuing root and dials every host at addr.
func httpsClient(roots *x509.CertPool, addr string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// handshake connects to addr with SNI host, trusting roots, and returns
// the leaf certificate or the handshake error.
func handshake(addr, host string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitCert waits until addr serves a certificate for host that roots trust.
func waitCert(t *testing.T, addr, host string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	var cert *x509.Certificate
	waitFor(t, func() bool {
		c, err := handshake(addr, host, roots)
		cert = c
		return err == nil
	})
	return cert
}

func httpsGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestHTTPS obtains certificates from a real ACME server (Pebble, really
// validating): production domains up front through HTTP-01, a branch
// deploy's host on demand at its first handshake, nothing for hosts
// sitehost does not serve; HTTP redirects to HTTPS, HSTS and HTTP/2; after
// a restart with a changed domain list, the new domain is served and the
// removed one is not.
func TestHTTPS(t *testing.T) {
	p := pebbletest.Start(t, pebbletest.Options{})
	repo := gittest.New(t, "testdata/blog")
	repo.Git(repo.Work, "push", "-q", "origin", "HEAD:refs/heads/staging")
	data := t.TempDir()
	sites := func(domains string) string {
		return `  - name: blog
    repo: ` + repo.URL() + `
    domains: [` + domains + `]
    branches: [staging]
`
	}
	srv := startTLSServer(t, tlsConfig(t, p, data, "", "", "", sites("blog.test, www.blog.test")), nil,
		serverOptions{DisableTLSALPNChallenge: true})
	syncSite(t, srv, "blog")
	tlsAddr := srv.httpsLn.Addr().String()
	roots := p.IssuingRoots(t)

	cert := waitCert(t, tlsAddr, "blog.test", roots)
	if !strings.Contains(cert.Issuer.CommonName, "Pebble") {
		t.Errorf("issuer = %q, want Pebble's", cert.Issuer.CommonName)
	}
	waitCert(t, tlsAddr, "www.blog.test", roots)
	ordersAfterManaged := p.Orders()

	c := httpsClient(roots, tlsAddr)
	port := portOf(srv.httpsLn.Addr())
	resp, body := httpsGet(t, c, "https://blog.test:"+port+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, "Version one of the home page") {
		t.Fatalf("https home: %d %q", resp.StatusCode, body)
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("protocol = %s, want HTTP/2.0", resp.Proto)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("HSTS = %q", got)
	}
	// The site is built for its HTTPS URL.
	if !strings.Contains(body, "base=https://blog.test:"+port+"/") {
		t.Errorf("base URL is not the HTTPS one: %q", body)
	}
	resp, _ = httpsGet(t, c, "https://www.blog.test:"+port+"/about/?q=1")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 301 || loc != "https://blog.test:"+port+"/about/?q=1" {
		t.Errorf("https alias: %d %q, want 301 to the primary over https", resp.StatusCode, loc)
	}

	// Plain HTTP: 308 to HTTPS for our hosts, 404 for others.
	plain := get(t, srv, "blog.test", "/posts/?page=2")
	if want := "https://blog.test:" + port + "/posts/?page=2"; plain.status != 308 || plain.header.Get("Location") != want {
		t.Errorf("http: %d %q, want 308 to %s", plain.status, plain.header.Get("Location"), want)
	}
	if strings.Contains(plain.body, "page=2") {
		t.Errorf("http redirect body repeats the request: %q", plain.body)
	}
	// The body is fixed text: the Host header is the client's.
	if got := get(t, srv, "evil.test", "/"); got.status != 404 || strings.Contains(got.body, "evil") {
		t.Errorf("http unknown host: %d %q, want 404 without the host", got.status, got.body)
	}

	// On demand: the branch deploy's host gets a certificate at its first
	// handshake; hosts that name nothing get none, and cause no order.
	for _, host := range []string{"evil.test", "pr-9--blog.preview.test", "nope--blog.preview.test", "0123456789abcdef--blog.preview.test", ""} {
		if _, err := handshake(tlsAddr, host, roots); err == nil {
			t.Errorf("handshake for %q succeeded; want it refused", host)
		}
	}
	if got := p.Orders(); got != ordersAfterManaged {
		t.Errorf("orders at Pebble went from %d to %d for hosts sitehost does not serve", ordersAfterManaged, got)
	}
	branchHost := "staging--blog.preview.test"
	waitCert(t, tlsAddr, branchHost, roots)
	resp, body = httpsGet(t, c, "https://"+branchHost+":"+port+"/")
	if resp.StatusCode != 200 || resp.Header.Get("X-Robots-Tag") != "noindex" || !strings.Contains(body, "Version one") {
		t.Errorf("branch deploy over https: %d %q", resp.StatusCode, body)
	}
	if got := p.Orders(); got != ordersAfterManaged+1 {
		t.Errorf("orders = %d, want %d (one for the branch host)", got, ordersAfterManaged+1)
	}

	// The API shows the certificates.
	var info struct {
		Certificates []struct {
			Domain   string    `json:"domain"`
			State    string    `json:"state"`
			NotAfter time.Time `json:"not_after"`
		} `json:"certificates"`
	}
	apiGet(t, srv, "/api/v1/sites/blog", testToken, 200, &info)
	if len(info.Certificates) != 2 || info.Certificates[0].State != "valid" || info.Certificates[0].NotAfter.Before(time.Now()) {
		t.Errorf("certificates in the API: %+v", info.Certificates)
	}
	// And the metrics, for alerting on renewals that do not happen.
	text := scrape(t, srv)
	for _, d := range []string{"blog.test", "www.blog.test"} {
		v := metric(text, `sitehost_certificate_expiry_timestamp_seconds{domain="`+d+`"}`)
		if exp := time.Unix(int64(v), 0); v <= 0 || !exp.Equal(cert.NotAfter.Truncate(time.Second)) && d == "blog.test" || exp.Before(time.Now()) {
			t.Errorf("certificate expiry of %s in /metrics: %v (certificate: %s)", d, v, cert.NotAfter)
		}
	}
}

// TestHTTPSTLSALPN obtains a certificate with TLS-ALPN-01 alone.
func TestHTTPSTLSALPN(t *testing.T) {
	p := pebbletest.Start(t, pebbletest.Options{})
	repo := plainRepo(t, 1, "v1")
	srv := startServerUntil(t, tlsConfig(t, p, t.TempDir(), "", "", "", toolNoneSite(repo.URL())), nil,
		serverOptions{DisableHTTPChallenge: true})
	syncSite(t, srv.server, "blog")
	roots := p.IssuingRoots(t)
	waitCert(t, srv.httpsLn.Addr().String(), "blog.test", roots)
	c := httpsClient(roots, srv.httpsLn.Addr().String())
	if resp, body := httpsGet(t, c, "https://blog.test/"); resp.StatusCode != 200 || body != "<h1>home v1</h1>" {
		t.Errorf("https: %d %q", resp.StatusCode, body)
	}
	// certmagic logs the challenge it solved.
	logs := srv.logs.String()
	if !strings.Contains(logs, "challenge_type=tls-alpn-01") || strings.Contains(logs, "challenge_type=http-01") {
		t.Errorf("want a TLS-ALPN-01 challenge and no HTTP-01 one in the server's log")
	}
}

// TestHTTPSRestartDomains: a domain added to sites.yaml gets a certificate
// on restart, a removed one is no longer served, and the kept one is
// served from storage without a new order.
func TestHTTPSRestartDomains(t *testing.T) {
	p := pebbletest.Start(t, pebbletest.Options{AlwaysValid: true})
	repo := plainRepo(t, 1, "v1")
	data := t.TempDir()
	site := func(domains string) string {
		return strings.Replace(toolNoneSite(repo.URL()), "[blog.test]", "["+domains+"]", 1)
	}
	roots := p.IssuingRoots(t)
	srv := startServerUntil(t, tlsConfig(t, p, data, "", "", "", site("blog.test, old.test")), nil, serverOptions{})
	waitCert(t, srv.httpsLn.Addr().String(), "old.test", roots)
	waitCert(t, srv.httpsLn.Addr().String(), "blog.test", roots)
	orders := p.Orders()
	srv.stop(t)

	srv = startServerUntil(t, tlsConfig(t, p, data, "", "", "", site("blog.test, new.test")), nil, serverOptions{})
	addr := srv.httpsLn.Addr().String()
	waitCert(t, addr, "new.test", roots)
	if _, err := handshake(addr, "old.test", roots); err == nil {
		t.Error("a domain removed from sites.yaml is still served over TLS")
	}
	if _, err := handshake(addr, "blog.test", roots); err != nil {
		t.Errorf("kept domain: %v", err)
	}
	if got := p.Orders(); got != orders+1 {
		t.Errorf("orders after restart = %d, want %d (only new.test)", got, orders+1)
	}
}

// TestHTTPSSharedStorage: two sitehost processes on one bucket manage the
// same domain; one certificate is ordered and both serve it. Pebble
// validates on the first one's HTTP port, whichever process ordered: the
// challenge is answered from the shared storage.
func TestHTTPSSharedStorage(t *testing.T) {
	p := pebbletest.Start(t, pebbletest.Options{})
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	repo := plainRepo(t, 1, "v1")
	storage := fmt.Sprintf("  storage:\n    kind: s3\n    s3: {endpoint: %q, bucket: %q}\n", m.Endpoint, bucket)
	opts := serverOptions{DisableTLSALPNChallenge: true}
	a := startTLSServer(t, tlsConfig(t, p, t.TempDir(), "", "", storage, toolNoneSite(repo.URL())), s3Env(m), opts)
	b := startTLSServer(t, tlsConfig(t, p, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", storage, toolNoneSite(repo.URL())), s3Env(m), opts)
	roots := p.IssuingRoots(t)
	ca := waitCert(t, a.httpsLn.Addr().String(), "blog.test", roots)
	cb := waitCert(t, b.httpsLn.Addr().String(), "blog.test", roots)
	if ca.SerialNumber.Cmp(cb.SerialNumber) != 0 {
		t.Errorf("the processes serve different certificates: serials %s and %s", ca.SerialNumber, cb.SerialNumber)
	}
	if got := p.Orders(); got != 1 {
		t.Errorf("orders at Pebble = %d, want 1", got)
	}
}

// TestHTTPSFailures: a domain the CA refuses is shown as failed, with the
// reason, in the site's API status and the log, while the others serve; a
// renewal that fails (the CA is down) leaves the valid certificate serving.
func TestHTTPSFailures(t *testing.T) {
	p := pebbletest.Start(t, pebbletest.Options{AlwaysValid: true})
	repo := plainRepo(t, 1, "v1")
	site := strings.Replace(toolNoneSite(repo.URL()), "[blog.test]", "[blog.test, "+pebbletest.BlockedDomain+"]", 1)
	srv := startServerUntil(t, tlsConfig(t, p, t.TempDir(), "", "", "", site), nil, serverOptions{})
	syncSite(t, srv.server, "blog")
	roots := p.IssuingRoots(t)
	addr := srv.httpsLn.Addr().String()
	good := waitCert(t, addr, "blog.test", roots)

	type certJSON struct {
		Domain, State, Error string
		NotAfter             time.Time `json:"not_after"`
	}
	certsOf := func() map[string]certJSON {
		var info struct {
			Certificates []certJSON `json:"certificates"`
		}
		apiGet(t, srv.server, "/api/v1/sites/blog", testToken, 200, &info)
		out := map[string]certJSON{}
		for _, c := range info.Certificates {
			out[c.Domain] = c
		}
		return out
	}
	waitFor(t, func() bool { return certsOf()[pebbletest.BlockedDomain].State == "failed" })
	blocked := certsOf()[pebbletest.BlockedDomain]
	if !strings.Contains(blocked.Error, "rejectedIdentifier") && !strings.Contains(blocked.Error, "blocked") {
		t.Errorf("failed certificate's error does not say why: %q", blocked.Error)
	}
	if !strings.Contains(srv.logs.String(), `msg="certificate issuance failed; certmagic retries with backoff" component=certs domain=`+pebbletest.BlockedDomain) {
		t.Errorf("the log has no issuance failure naming %s", pebbletest.BlockedDomain)
	}
	if _, err := handshake(addr, pebbletest.BlockedDomain, roots); err == nil {
		t.Errorf("a handshake for the refused domain succeeded")
	}

	p.Stop(t)
	if err := srv.certs.Renew(t.Context(), "blog.test"); err == nil {
		t.Fatal("renewal with the CA down succeeded")
	}
	after, err := handshake(addr, "blog.test", roots)
	if err != nil || after.SerialNumber.Cmp(good.SerialNumber) != 0 {
		t.Errorf("after a failed renewal: %v, serial %v; want the old certificate %v serving", err, after, good.SerialNumber)
	}
	if st := certsOf()["blog.test"]; st.State != "valid" || st.Error == "" {
		t.Errorf("status after a failed renewal = %+v; want valid, with the renewal error", st)
	}
}
