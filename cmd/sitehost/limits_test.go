package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestServerLimits: server.limits reaches the data plane's listeners: a
// client IP's connection over conns_per_ip is closed before it is
// answered, and /metrics counts it; the admin listener is not limited.
func TestServerLimits(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "  []\n", "  limits:\n    conns_per_ip: 2\n    write_timeout: 3s\n")
	srv := startServer(t, cfg, nil)
	addr := srv.httpLn.Addr().String()
	ask := func(c net.Conn) (int, error) {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: nope.test\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if status, err := ask(c); status != http.StatusNotFound || err != nil {
			t.Fatalf("kept connection: %d, %v", status, err)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if status, err := ask(c); err == nil {
		t.Fatalf("third connection from one address answered %d, want it closed", status)
	}
	// The admin listener has no such limit: with two connections held
	// open to it, a third from the same address is answered.
	for range 2 {
		c, err := net.Dial("tcp", srv.adminLn.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	r, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + srv.adminLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{`sitehost_connections_refused_total{reason="per_ip"} 1`, "sitehost_connections_open 2"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := srv.cfg.Server.Limits.WriteTimeout.String(); got != "3s" {
		t.Errorf("write_timeout %s, want 3s", got)
	}
}

// TestControlHostKeepsAdminTimeouts: the admin handler reached through
// the control host on the public listener answers with the admin
// listener's write timeout, not the data plane's: here 1ns, which no
// answer could meet.
func TestControlHostKeepsAdminTimeouts(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "  []\n", "  control_host: ctl.test\n  limits: {write_timeout: 1ns}\n")
	srv := startServer(t, cfg, nil)
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.httpLn.Addr().String()+"/api/v1/sites", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "ctl.test"
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("the control host's answer was cut off: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("control host /api/v1/sites: %d %q, %v", resp.StatusCode, body, err)
	}
}
