package pebbletest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/pebbletest"
)

func TestAlwaysValid(t *testing.T) {
	started := time.Now()
	srv := pebbletest.Start(t, pebbletest.Options{AlwaysValid: true})
	t.Logf("Start took %v", time.Since(started))

	if !strings.HasPrefix(srv.DirectoryURL, "https://127.0.0.1:") || !strings.HasSuffix(srv.DirectoryURL, "/dir") {
		t.Errorf("DirectoryURL = %q, want https://127.0.0.1:PORT/dir", srv.DirectoryURL)
	}
	if srv.HTTPPort == 0 || srv.TLSPort == 0 || srv.HTTPPort == srv.TLSPort {
		t.Errorf("HTTPPort, TLSPort = %d, %d; want two different ports", srv.HTTPPort, srv.TLSPort)
	}
	if !strings.Contains(srv.Logs(), "Disabling VA challenge requests") {
		t.Errorf("AlwaysValid did not turn off validation; log:\n%s", srv.Logs())
	}

	c := newACMEClient(t, srv)
	for _, k := range []string{"newNonce", "newAccount", "newOrder"} {
		if u := c.dir[k]; !strings.HasPrefix(u, strings.TrimSuffix(srv.DirectoryURL, "/dir")+"/") {
			t.Errorf("directory %s = %q, want a URL on the API listener", k, u)
		}
	}

	checkIssuingRoots(t, srv)
	checkDNS(t, srv.DNSAddr())

	if n := srv.Orders(); n != 0 {
		t.Fatalf("Orders() at start = %d, want 0", n)
	}

	// A POST to newOrder that is not a JWS reaches the handler and is
	// rejected: logged as a call, not counted as an order.
	resp, err := c.http.Post(c.dir["newOrder"], "application/jose+json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST newOrder: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unsigned POST newOrder: %s %s, want 400", resp.Status, body)
	}
	if !strings.Contains(srv.Logs(), "POST /order-plz -> calling handler()") {
		t.Errorf("the rejected newOrder request is not in the log:\n%s", srv.Logs())
	}
	if n := srv.Orders(); n != 0 {
		t.Errorf("Orders() after a rejected newOrder = %d, want 0", n)
	}

	// Real orders count once each, right after their response arrives.
	c.newAccount()
	for want := 1; want <= 2; want++ {
		order := c.newOrder("site" + strconv.Itoa(want) + ".test")
		if order.Status != "pending" && order.Status != "ready" {
			t.Errorf("order %d status %q", want, order.Status)
		}
		for range 2 { // asking again must not count again
			if n := srv.Orders(); n != want {
				t.Fatalf("Orders() after %d orders = %d\n%s", want, n, srv.Logs())
			}
		}
	}
}

// TestRealValidationStartStop starts Pebble with real validation and checks
// that cleanup stops both processes.
func TestRealValidationStartStop(t *testing.T) {
	var apiAddr, dnsAddr string
	t.Run("run", func(t *testing.T) {
		started := time.Now()
		srv := pebbletest.Start(t, pebbletest.Options{})
		t.Logf("Start took %v", time.Since(started))
		logs := srv.Logs()
		if strings.Contains(logs, "Disabling VA challenge requests") {
			t.Errorf("validation is off without AlwaysValid; log:\n%s", logs)
		}
		if !strings.Contains(logs, "Using custom DNS resolver for ACME challenges: "+srv.DNSAddr()) {
			t.Errorf("pebble does not use challtestsrv for DNS; log:\n%s", logs)
		}
		checkDNS(t, srv.DNSAddr())
		u, err := url.Parse(srv.DirectoryURL)
		if err != nil {
			t.Fatal(err)
		}
		apiAddr, dnsAddr = u.Host, srv.DNSAddr()
	})
	if apiAddr == "" {
		return // skipped, or failed
	}
	for _, addr := range []string{apiAddr, dnsAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s still accepts connections after cleanup", addr)
		}
	}
}

// TestHTTP01 has Pebble really validate an HTTP-01 challenge at HTTPPort on
// 127.0.0.1, for a made-up name resolved through challtestsrv.
func TestHTTP01(t *testing.T) {
	srv := pebbletest.Start(t, pebbletest.Options{})
	c := newACMEClient(t, srv)
	c.newAccount()
	order := c.newOrder("made-up.test")
	if len(order.Authorizations) != 1 {
		t.Fatalf("order has %d authorizations, want 1", len(order.Authorizations))
	}
	authzURL := order.Authorizations[0]
	var authz struct {
		Status     string
		Challenges []struct{ Type, URL, Token string }
	}
	c.postJSON(authzURL, nil, &authz)
	var chalURL, token string
	for _, ch := range authz.Challenges {
		if ch.Type == "http-01" {
			chalURL, token = ch.URL, ch.Token
		}
	}
	if chalURL == "" {
		t.Fatalf("no http-01 challenge in %+v", authz)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.HTTPPort)))
	if err != nil {
		t.Fatalf("listening on HTTPPort: %v", err)
	}
	hits := make(chan string, 10)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hits <- r.Host + r.URL.Path:
		default:
		}
		if r.URL.Path == "/.well-known/acme-challenge/"+token {
			_, _ = io.WriteString(w, token+"."+c.thumbprint())
			return
		}
		http.NotFound(w, r)
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	started := time.Now()
	c.postJSON(chalURL, struct{}{}, nil)
	deadline := time.Now().Add(30 * time.Second)
	for authz.Status != "valid" {
		if authz.Status == "invalid" || time.Now().After(deadline) {
			t.Fatalf("authorization %q\n%s", authz.Status, srv.Logs())
		}
		time.Sleep(100 * time.Millisecond)
		c.postJSON(authzURL, nil, &authz)
	}
	t.Logf("HTTP-01 validated in %v", time.Since(started))
	select {
	case hit := <-hits:
		if want := "made-up.test:" + strconv.Itoa(srv.HTTPPort) + "/.well-known/acme-challenge/" + token; hit != want {
			t.Errorf("validation request for %s, want %s", hit, want)
		}
	default:
		t.Error("the authorization is valid, but nobody asked HTTPPort")
	}
	if n := srv.Orders(); n != 1 {
		t.Errorf("Orders() = %d, want 1", n)
	}
}

// checkIssuingRoots checks that the pool verifies Pebble's intermediate, and
// that the API's pool does not.
func checkIssuingRoots(t *testing.T, srv *pebbletest.Server) {
	t.Helper()
	roots := srv.IssuingRoots(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.APIRoots}}}
	resp, err := client.Get(srv.ManagementURL() + "/intermediates/0")
	if err != nil {
		t.Fatalf("fetching the intermediate: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	block, _ := pem.Decode(body)
	if resp.StatusCode != http.StatusOK || block == nil {
		t.Fatalf("intermediate: %s %q", resp.Status, body)
	}
	inter, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing the intermediate: %v", err)
	}
	anyUsage := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if _, err := inter.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: anyUsage}); err != nil {
		t.Errorf("IssuingRoots does not verify the intermediate: %v", err)
	}
	if _, err := inter.Verify(x509.VerifyOptions{Roots: srv.APIRoots, KeyUsages: anyUsage}); err == nil {
		t.Error("APIRoots verifies the issuing intermediate; want separate trust")
	}
}

// checkDNS resolves names through challtestsrv with Go's own resolver.
func checkDNS(t *testing.T, addr string) {
	t.Helper()
	for _, network := range []string{"udp", "tcp"} {
		r := &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		got, err := r.LookupNetIP(ctx, "ip4", "anything.test.")
		if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("A anything.test over %s = %v, %v; want [127.0.0.1]", network, got, err)
		}
		// No AAAA record: challtestsrv answers NOERROR with an empty answer
		// and no AA or RA flag, which Go's resolver calls a "lame referral".
		got, err = r.LookupNetIP(ctx, "ip6", "anything.test.")
		if len(got) != 0 || err == nil {
			t.Errorf("AAAA anything.test over %s = %v, %v; want no address", network, got, err)
		}
		cancel()
	}
}

// acmeClient is just enough RFC 8555 to create an account and orders and
// answer a challenge: JWS with ES256, nonces from responses.
type acmeClient struct {
	t     *testing.T
	http  *http.Client
	dir   map[string]string
	key   *ecdsa.PrivateKey
	kid   string
	nonce string
}

type acmeOrder struct {
	Status         string
	Authorizations []string
}

func newACMEClient(t *testing.T, srv *pebbletest.Server) *acmeClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &acmeClient{
		t:    t,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.APIRoots}}},
		key:  key,
	}
	t.Cleanup(c.http.CloseIdleConnections)
	resp, err := c.http.Get(srv.DirectoryURL)
	if err != nil {
		t.Fatalf("GET directory: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET directory: %s", resp.Status)
	}
	var dir map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatalf("decoding the directory: %v", err)
	}
	c.dir = map[string]string{}
	for k, v := range dir {
		if s, ok := v.(string); ok {
			c.dir[k] = s
		}
	}
	return c
}

func (c *acmeClient) newAccount() {
	c.t.Helper()
	resp := c.post(c.dir["newAccount"], map[string]any{"termsOfServiceAgreed": true}, nil)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("newAccount: %s", resp.Status)
	}
	c.kid = resp.Header.Get("Location")
}

func (c *acmeClient) newOrder(name string) acmeOrder {
	c.t.Helper()
	var order acmeOrder
	resp := c.post(c.dir["newOrder"], map[string]any{
		"identifiers": []map[string]string{{"type": "dns", "value": name}},
	}, &order)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("newOrder %s: %s", name, resp.Status)
	}
	return order
}

// postJSON posts payload (nil: POST-as-GET) and wants a 200.
func (c *acmeClient) postJSON(url string, payload, out any) {
	c.t.Helper()
	if resp := c.post(url, payload, out); resp.StatusCode != http.StatusOK {
		c.t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

// post sends payload (nil: POST-as-GET) in a JWS, signed with the account's
// kid once there is one, and decodes a successful answer into out.
func (c *acmeClient) post(url string, payload, out any) *http.Response {
	c.t.Helper()
	if c.nonce == "" {
		resp, err := c.http.Head(c.dir["newNonce"])
		if err != nil {
			c.t.Fatalf("newNonce: %v", err)
		}
		_ = resp.Body.Close()
		c.nonce = resp.Header.Get("Replay-Nonce")
	}
	protected := map[string]any{"alg": "ES256", "nonce": c.nonce, "url": url}
	if c.kid != "" {
		protected["kid"] = c.kid
	} else {
		protected["jwk"] = c.jwk()
	}
	payload64 := ""
	if payload != nil {
		payload64 = b64(mustJSON(c.t, payload))
	}
	protected64 := b64(mustJSON(c.t, protected))
	digest := sha256.Sum256([]byte(protected64 + "." + payload64))
	r, s, err := ecdsa.Sign(rand.Reader, c.key, digest[:])
	if err != nil {
		c.t.Fatal(err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	body := mustJSON(c.t, map[string]string{"protected": protected64, "payload": payload64, "signature": b64(sig)})

	resp, err := c.http.Post(url, "application/jose+json", bytes.NewReader(body))
	if err != nil {
		c.t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	c.nonce = resp.Header.Get("Replay-Nonce")
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("POST %s: reading the answer: %v", url, err)
	}
	if resp.StatusCode >= 300 {
		c.t.Fatalf("POST %s: %s %s", url, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("POST %s: decoding %s: %v", url, data, err)
		}
	}
	return resp
}

// jwk is the account key as a JWK, members in the order RFC 7638 needs for
// the thumbprint.
func (c *acmeClient) jwk() map[string]string {
	pub, err := c.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		c.t.Fatal(err)
	}
	return map[string]string{"crv": "P-256", "kty": "EC", "x": b64(pub[1:33]), "y": b64(pub[33:])}
}

// thumbprint is the RFC 7638 thumbprint of the account key (encoding/json
// sorts map keys, which is the canonical order).
func (c *acmeClient) thumbprint() string {
	sum := sha256.Sum256(mustJSON(c.t, c.jwk()))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
