package serve_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
)

// TestRangeLimits: many ranges, or overlapping ones, get the whole file
// with 200 (RFC 9110 §14.2 lets a server ignore Range); a few disjoint ones
// still get 206 multipart.
func TestRangeLimits(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	body := strings.Repeat("0123456789", 200) // 2000 bytes
	e.live(t, "a", site.Production, map[string]string{"file.txt": body})

	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("%d-%d", i, i))
	}
	disjoint := func(n int) string {
		var r []string
		for i := range n {
			r = append(r, fmt.Sprintf("%d-%d", i*100, i*100+9))
		}
		return "bytes=" + strings.Join(r, ",")
	}
	tests := []struct {
		name      string
		rng       string
		want      int
		wantParts int // of a 206 multipart answer
	}{
		{"1000 one-byte ranges", "bytes=" + strings.Join(many, ","), 200, 0},
		{"17 disjoint ranges", disjoint(17), 200, 0},
		{"two overlapping", "bytes=0-99,50-149", 200, 0},
		{"overlapping out of order", "bytes=500-599,0-99,90-109", 200, 0},
		{"suffix overlapping", "bytes=1900-1949,-60", 200, 0},
		{"three disjoint", "bytes=0-9,100-109,1990-", 206, 3},
		{"16 disjoint", disjoint(16), 206, 16},
		{"one range", "bytes=10-19", 206, 0},
		{"adjacent, not overlapping", "bytes=0-9,10-19", 206, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, e.h, request{host: "a.test", target: "/file.txt", header: http.Header{"Range": {tt.rng}}})
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			switch {
			case tt.want == 200:
				if rec.Body.String() != body {
					t.Errorf("body of %d bytes, want the whole file of %d", rec.Body.Len(), len(body))
				}
			case tt.wantParts > 0:
				_, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
				if err != nil {
					t.Fatal(err)
				}
				mr := multipart.NewReader(rec.Body, params["boundary"])
				n := 0
				for {
					_, err := mr.NextPart()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					n++
				}
				if n != tt.wantParts {
					t.Errorf("%d parts, want %d", n, tt.wantParts)
				}
			}
		})
	}
}

// TestErrorBodiesDoNotEcho: a 64 KiB Host header or path is not repeated in
// the answer's body.
func TestErrorBodiesDoNotEcho(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{"index.html": "home", "dir/index.html": "dir"})
	long := strings.Repeat("x", 60<<10)
	tests := []struct {
		name, host, target string
		want               int
	}{
		{"unknown host", long + ".test", "/", 404},
		{"unknown preview", "pr-1--a." + previewDomain, "/" + long, 404},
		{"missing page", "a.test", "/" + long, 404},
		{"folder redirect", "a.test", "/dir?" + long, 301},
		{"alias redirect", "www.a.test", "/" + long, 301},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, e.h, request{host: tt.host, target: tt.target})
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if b := rec.Body.String(); len(b) > 200 || strings.Contains(b, "xxx") {
				t.Errorf("body of %d bytes repeats the request: %.80q…", len(b), b)
			}
		})
	}
}

// limitedServer serves h on 127.0.0.1 behind a serve.ConnLimiter; refused
// receives the reason of every connection closed at once.
func limitedServer(t *testing.T, h http.Handler, l serve.ConnLimits) (addr string, refused chan string) {
	t.Helper()
	refused = make(chan string, 16)
	l.Refused = func(reason string) { refused <- reason }
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = serve.NewConnLimiter(l).Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), refused
}

// keptConn is a keep-alive connection that has had one answer: the server
// has accepted and counted it.
func keptConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if status, err := roundTrip(c); err != nil || status != 200 {
		t.Fatalf("first answer on a new connection: %d, %v", status, err)
	}
	return c
}

// roundTrip sends one GET for a.test's home page on c and reads the answer.
func roundTrip(c net.Conn) (int, error) {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
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

func TestConnLimits(t *testing.T) {
	e := newEnv(t, time.Hour, true)
	e.live(t, "a", site.Production, map[string]string{"index.html": "home"})
	for _, tt := range []struct {
		name   string
		limits serve.ConnLimits
		open   int
		reason string
	}{
		{"per ip", serve.ConnLimits{PerIP: 3}, 3, "per_ip"},
		{"total", serve.ConnLimits{PerIP: 10, Total: 2}, 2, "total"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, refused := limitedServer(t, e.h, tt.limits)
			conns := make([]net.Conn, tt.open)
			for i := range conns {
				conns[i] = keptConn(t, addr)
			}
			// One more: accepted by the kernel, closed by sitehost before
			// it reads a request.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if status, err := roundTrip(c); err == nil {
				t.Fatalf("connection %d over the limit got %d, want it closed", tt.open+1, status)
			}
			if r := <-refused; r != tt.reason {
				t.Errorf("refused for %q, want %q", r, tt.reason)
			}
			// The kept ones still work.
			if status, err := roundTrip(conns[0]); err != nil || status != 200 {
				t.Fatalf("kept connection: %d, %v", status, err)
			}
			// Once one closes, its slot is free: a new connection is
			// served (after the server has seen the close).
			conns[len(conns)-1].Close()
			waitFor(t, "a slot freed by a close", func() bool {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return false
				}
				defer c.Close()
				status, err := roundTrip(c)
				return err == nil && status == 200
			})
		})
	}
}

// bigFile is a deploy's incompressible file, larger than what the kernel
// buffers of a loopback connection hold.
const bigFileSize = 32 << 20

func bigFileEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, time.Hour, true)
	big := make([]byte, bigFileSize)
	rand.Read(big)
	e.live(t, "a", site.Production, map[string]string{"big.bin": string(big), "index.html": "home"})
	return e
}

// TestSlowReaderCutOff: a client that stops reading is let go once the
// write deadline of the body (Write.Timeout + size / Write.MinRate) has
// passed, with the rest of the body unsent; the server has no other write
// timeout here.
func TestSlowReaderCutOff(t *testing.T) {
	e := bigFileEnv(t)
	done := make(chan accesslog.Entry, 1)
	h := serve.New(serve.Options{Routes: mustRoutes(t, sites), Reader: e.pub,
		Write:   serve.WriteLimits{Timeout: 50 * time.Millisecond, MinRate: 1 << 30},
		Observe: func(_ *http.Request, e accesslog.Entry) { done <- e }})
	srv := httptest.NewServer(h)
	defer srv.Close()

	// A small receive buffer, so the server's writes block soon.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	c, err := d.DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Read nothing until the handler has given up.
	select {
	case o := <-done:
		if o.Bytes >= bigFileSize {
			t.Fatalf("the handler wrote all %d bytes to a client that read none", o.Bytes)
		}
	case <-time.After(time.Minute):
		t.Fatal("the handler is still writing to a client that reads nothing")
	}
	c.SetReadDeadline(time.Now().Add(time.Minute)) //nolint:errcheck // a guard against hanging, not an assertion
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection stayed open after the handler gave up (%d bytes read)", n)
	}
	if n >= bigFileSize {
		t.Errorf("read %d bytes, want fewer than the body's %d", n, bigFileSize)
	}
}

// TestBigFileCompletes: with a write timeout far too short for the file
// alone, the body's own deadline (size / MinRate more) lets it finish.
func TestBigFileCompletes(t *testing.T) {
	e := bigFileEnv(t)
	write := serve.WriteLimits{Timeout: time.Millisecond, MinRate: 1 << 20}
	h := serve.New(serve.Options{Routes: mustRoutes(t, sites), Reader: e.pub, Write: write})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = write.Timeout
	srv.Start()
	defer srv.Close()
	var wg sync.WaitGroup
	for _, target := range []string{"/big.bin", "/"} {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+target, nil)
			req.Host = "a.test"
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || resp.StatusCode != 200 || (target == "/big.bin" && n != bigFileSize) {
				t.Errorf("%s: status %d, %d bytes, %v", target, resp.StatusCode, n, err)
			}
		})
	}
	wg.Wait()
}

// TestLimitedConnSendfile: a limited connection still offers what net/http
// uses for a file body (ReadFrom, so sendfile) and for a graceful close
// (CloseWrite).
func TestLimitedConnSendfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = serve.NewConnLimiter(serve.ConnLimits{PerIP: 1}).Listener(ln)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, ok := sc.(io.ReaderFrom); !ok {
		t.Error("the accepted connection has no ReadFrom: file bodies would not use sendfile")
	}
	if _, ok := sc.(interface{ CloseWrite() error }); !ok {
		t.Error("the accepted connection has no CloseWrite")
	}
}
