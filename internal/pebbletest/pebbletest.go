// Package pebbletest runs Pebble, Let's Encrypt's test ACME server, for
// tests: one pebble and one pebble-challtestsrv process per Start, on free
// loopback ports, with their own folder. challtestsrv is only Pebble's DNS
// server: it answers 127.0.0.1 for every A query, so any made-up name can be
// validated against the code under test listening on 127.0.0.1. Tests only.
//
// The binaries are not Go dependencies of this module; install them with
//
//	go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1 github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.1
//
// or point $SITEHOST_PEBBLE_DIR at a folder holding both. Without them,
// Start skips the test, except in CI (CI=true), where a skipped test would
// prove nothing.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a start may take; Pebble is ready in well
	// under a second, so this only catches a hung server.
	readyTimeout = 60 * time.Second
	// bindAttempts: a free port found by listening on :0 can be taken by
	// someone else before the servers bind it, so Start retries with new ones.
	bindAttempts = 3
	// logTail is how much server output Logs and failure messages show.
	logTail = 32 << 10

	installHint = "install them with `go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.1 github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.1`, or set SITEHOST_PEBBLE_DIR to a folder holding both"

	pebbleName = "pebble"
	challName  = "pebble-challtestsrv"
)

// Binaries finds pebble and pebble-challtestsrv: in $SITEHOST_PEBBLE_DIR if
// set (a folder holding both), else on PATH, else in $GOPATH/bin (default
// ~/go/bin), where go install puts them. Each is "" if missing.
func Binaries() (pebble, challtestsrv string) {
	return findBinary(pebbleName), findBinary(challName)
}

func findBinary(name string) string {
	if dir := os.Getenv("SITEHOST_PEBBLE_DIR"); dir != "" {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
		return ""
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = filepath.SplitList(gopath)
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = []string{filepath.Join(home, "go")}
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "bin", name); isExecutable(p) {
			return p
		}
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Options changes how Start runs Pebble.
type Options struct {
	// AlwaysValid skips challenge validation (PEBBLE_VA_ALWAYS_VALID=1);
	// default false: Pebble really validates HTTP-01 / TLS-ALPN-01 by
	// connecting to HTTPPort / TLSPort on 127.0.0.1 (all names resolve to
	// 127.0.0.1 through challtestsrv's DNS).
	AlwaysValid bool
}

// Server is a running Pebble with its DNS server.
type Server struct {
	DirectoryURL string // https://127.0.0.1:PORT/dir
	// HTTPPort and TLSPort are where Pebble's validation authority connects
	// for HTTP-01 and TLS-ALPN-01 (free loopback ports picked by Start; the
	// code under test must listen on 127.0.0.1 at exactly these ports).
	HTTPPort, TLSPort int
	// APIRoots trusts Pebble's ACME API listener (give it to the ACME
	// client). It also trusts the management API.
	APIRoots *x509.CertPool
	// APIRootFile is the same root as a PEM file (for a ca_root setting).
	APIRootFile string

	pebbleBin, challBin string
	opts                Options
	dir                 string // certificate, key, config and logs
	certFile, keyFile   string // Pebble's API certificate and key
	pebbleLog, challLog string // output files, appended to on each attempt
	client              *http.Client

	dnsAddr      string // challtestsrv DNS, "127.0.0.1:PORT" on UDP and TCP
	challMgmtURL string // challtestsrv management, http://127.0.0.1:PORT
	mgmtURL      string // Pebble management, https://127.0.0.1:PORT

	mu    sync.Mutex
	procs []*process // running processes; empty when stopped

	orderMu  sync.Mutex
	scanned  int64           // bytes of pebbleLog consumed by Orders
	partial  []byte          // a line whose newline has not been read yet
	orderIDs map[string]bool // orders Pebble has added to its database
}

// process is one run of a server binary.
type process struct {
	name     string
	cmd      *exec.Cmd
	logFile  string        // shared by the runs of one binary
	logStart int64         // where this run's output starts in logFile
	done     chan struct{} // closed when the process has exited
	err      error         // Wait's result, valid after done
}

// output returns the end of this run's output.
func (p *process) output() string {
	return tailFrom(p.logFile, p.logStart)
}

// errPortTaken means a server could not bind a port picked for it.
var errPortTaken = errors.New("a port was taken before the server could bind it")

// Start starts pebble-challtestsrv and pebble, waits until Pebble's
// directory answers 200, and registers their shutdown with t.Cleanup.
// Without the binaries it skips the test, or fails it when CI is "true".
//
// challtestsrv serves DNS on a free loopback port (UDP and TCP), answering
// 127.0.0.1 to every A query and nothing to AAAA queries; its challenge
// listeners and DoH are off, so the code under test owns HTTPPort and
// TLSPort. Pebble runs with -strict=false, PEBBLE_VA_NOSLEEP=1 (no random
// sleep before validating), PEBBLE_WFE_NONCEREJECT=0 (no random badNonce
// errors), retry-after 1 s for authorizations and orders, ECDSA keys for
// issued certificates, and an API certificate generated here.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	pebbleBin, challBin := Binaries()
	if pebbleBin == "" || challBin == "" {
		var missing []string
		if pebbleBin == "" {
			missing = append(missing, pebbleName)
		}
		if challBin == "" {
			missing = append(missing, challName)
		}
		msg := "pebbletest: no " + strings.Join(missing, " or ") + " binary: " + installHint
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (required in CI)")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	s := &Server{
		pebbleBin: pebbleBin,
		challBin:  challBin,
		opts:      opts,
		dir:       dir,
		certFile:  filepath.Join(dir, "api-cert.pem"),
		keyFile:   filepath.Join(dir, "api-key.pem"),
		pebbleLog: filepath.Join(dir, "pebble.log"),
		challLog:  filepath.Join(dir, "challtestsrv.log"),
		orderIDs:  map[string]bool{},
	}
	s.APIRootFile = filepath.Join(dir, "api-ca.pem")
	roots, err := writeAPICert(s.certFile, s.keyFile, s.APIRootFile)
	if err != nil {
		t.Fatalf("pebbletest: generating the API certificate: %v", err)
	}
	s.APIRoots = roots
	s.client = &http.Client{
		Timeout: 5 * time.Second,
		// No Proxy: the servers are on loopback.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	}
	// Registered after TempDir, so it runs first: the servers are dead
	// before their folder is removed.
	t.Cleanup(s.kill)

	var lastErr error
	for range bindAttempts {
		lastErr = s.run(t.Context())
		if lastErr == nil {
			return s
		}
		s.kill()
		if !errors.Is(lastErr, errPortTaken) {
			break
		}
	}
	t.Fatalf("pebbletest: starting pebble: %v\n--- pebble log tail ---\n%s\n--- pebble-challtestsrv log tail ---\n%s",
		lastErr, tailFrom(s.pebbleLog, 0), tailFrom(s.challLog, 0))
	return nil
}

// IssuingRoots fetches the root that signs issued certificates from Pebble's
// management API and returns a pool with it, for TLS clients of the code
// under test. Pebble makes a new root on every start, so ask each Server.
// The intermediate (/intermediates/0) is not in the pool: the server under
// test sends it in its chain.
func (s *Server) IssuingRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	url := s.mgmtURL + "/roots/0"
	body, err := s.get(t.Context(), url)
	if err != nil {
		t.Fatalf("pebbletest: fetching the issuing root: %v", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := body; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("pebbletest: parsing the issuing root from %s: %v", url, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		t.Fatalf("pebbletest: no certificate in %s: %q", url, body)
	}
	return pool
}

// newOrderLine matches the line Pebble's WFE logs once it has stored a new
// order (wfe.NewOrder, `Added order %q to the db`), after the "Pebble "
// prefix and log.LstdFlags timestamp. Requests that Pebble rejects (bad
// JWS, bad nonce, unknown account, malformed or refused identifiers) only
// log "POST /order-plz -> calling handler()" and are not counted.
var newOrderLine = regexp.MustCompile(`^Pebble \d{4}/\d\d/\d\d \d\d:\d\d:\d\d Added order "([^"]+)" to the db$`)

// Orders returns how many new orders Pebble has created so far: requests to
// newOrder that it accepted and stored, each counted once by its order ID.
// Rejected requests to newOrder do not count.
//
// The count is exact at the moment of the call: Pebble writes the line to
// its log file before it answers the request, and Orders reads that file
// (not a pipe that might lag), so an order whose response the client has
// seen is always counted.
func (s *Server) Orders() int {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	f, err := os.Open(s.pebbleLog)
	if err != nil {
		return len(s.orderIDs) // after cleanup: the last count
	}
	defer f.Close()
	if _, err := f.Seek(s.scanned, io.SeekStart); err != nil {
		return len(s.orderIDs)
	}
	data, _ := io.ReadAll(f) // after an error, the next call reads the rest
	s.scanned += int64(len(data))
	data = append(s.partial, data...)
	// Only whole lines: log.Logger writes a line in one write, but this read
	// may land in the middle of it; the rest comes with the next call.
	last := bytes.LastIndexByte(data, '\n')
	s.partial = append([]byte(nil), data[last+1:]...)
	for line := range bytes.Lines(data[:last+1]) {
		if m := newOrderLine.FindSubmatch(bytes.TrimSuffix(line, []byte("\n"))); m != nil {
			s.orderIDs[string(m[1])] = true
		}
	}
	return len(s.orderIDs)
}

// Logs returns the end of pebble's output so far (the last 32 KiB), for
// failure messages.
func (s *Server) Logs() string {
	return tailFrom(s.pebbleLog, 0)
}

// run picks ports, starts both processes and waits until they serve.
func (s *Server) run(ctx context.Context) error {
	ports, err := freePorts(6)
	if err != nil {
		return fmt.Errorf("finding free ports: %w", err)
	}
	dnsPort, apiPort, mgmtPort, challMgmtPort := ports[0], ports[1], ports[2], ports[3]
	s.HTTPPort, s.TLSPort = ports[4], ports[5]
	s.dnsAddr = loopback(dnsPort)
	s.challMgmtURL = "http://" + loopback(challMgmtPort)
	s.mgmtURL = "https://" + loopback(mgmtPort)
	s.DirectoryURL = "https://" + loopback(apiPort) + "/dir"

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()

	chall, err := s.spawn(challName, s.challBin, s.challLog, environ(),
		"-dnsserver", s.dnsAddr,
		"-defaultIPv4", "127.0.0.1",
		"-defaultIPv6", "",
		"-http01", "",
		"-https01", "",
		"-tlsalpn01", "",
		"-doh", "",
		"-management", loopback(challMgmtPort),
	)
	if err != nil {
		return err
	}
	if err := s.waitChallReady(ctx, chall); err != nil {
		return err
	}

	config := filepath.Join(s.dir, "pebble-config.json")
	if err := s.writeConfig(config, apiPort, mgmtPort); err != nil {
		return err
	}
	env := append(environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	if s.opts.AlwaysValid {
		env = append(env, "PEBBLE_VA_ALWAYS_VALID=1")
	}
	pebble, err := s.spawn(pebbleName, s.pebbleBin, s.pebbleLog, env,
		"-config", config,
		"-dnsserver", s.dnsAddr,
		"-strict=false",
	)
	if err != nil {
		return err
	}
	return s.waitPebbleReady(ctx, pebble, chall)
}

// spawn starts one binary with its output appended to logFile.
func (s *Server) spawn(name, bin, logFile string, env []string, args ...string) (*process, error) {
	// A file, not a pipe: Orders must see every line Pebble has written,
	// without waiting for a copying goroutine.
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", logFile, err)
	}
	defer out.Close() // the child has its own copy
	fmt.Fprintf(out, "--- pebbletest: starting %s %s ---\n", bin, strings.Join(args, " "))
	start, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", logFile, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	p := &process{name: name, cmd: cmd, logFile: logFile, logStart: start, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// writeConfig writes Pebble's JSON configuration.
func (s *Server) writeConfig(path string, apiPort, mgmtPort int) error {
	type retryAfter struct {
		Authz int `json:"authz"`
		Order int `json:"order"`
	}
	type pebble struct {
		ListenAddress           string     `json:"listenAddress"`
		ManagementListenAddress string     `json:"managementListenAddress"`
		Certificate             string     `json:"certificate"`
		PrivateKey              string     `json:"privateKey"`
		HTTPPort                int        `json:"httpPort"`
		TLSPort                 int        `json:"tlsPort"`
		OCSPResponderURL        string     `json:"ocspResponderURL"`
		EABRequired             bool       `json:"externalAccountBindingRequired"`
		RetryAfter              retryAfter `json:"retryAfter"`
		KeyAlgorithm            string     `json:"keyAlgorithm"`
		DomainBlocklist         []string   `json:"domainBlocklist"`
	}
	data, err := json.MarshalIndent(map[string]pebble{"pebble": {
		ListenAddress:           loopback(apiPort),
		ManagementListenAddress: loopback(mgmtPort),
		Certificate:             s.certFile,
		PrivateKey:              s.keyFile,
		HTTPPort:                s.HTTPPort,
		TLSPort:                 s.TLSPort,
		RetryAfter:              retryAfter{Authz: 1, Order: 1},
		KeyAlgorithm:            "ecdsa",
		DomainBlocklist:         []string{BlockedDomain},
	}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing the pebble config: %w", err)
	}
	return nil
}

// waitChallReady waits until challtestsrv answers 127.0.0.1 to an A query
// over UDP and over TCP (Pebble's VA uses TCP), and its management API
// answers.
func (s *Server) waitChallReady(ctx context.Context, p *process) error {
	return poll(ctx, []*process{p}, func() bool {
		for _, network := range []string{"udp", "tcp"} {
			qctx, cancel := context.WithTimeout(ctx, time.Second)
			addrs, err := queryA(qctx, network, s.dnsAddr, "pebbletest-ready.test.")
			cancel()
			if err != nil || len(addrs) != 1 || addrs[0] != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
				return false
			}
		}
		// Any HTTP answer will do: the root path is a 404.
		resp, err := s.client.Get(s.challMgmtURL + "/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return true
	})
}

// waitPebbleReady waits until the directory and the management API answer
// 200; Pebble starts the management listener in its own goroutine, so the
// directory answering does not mean the management API does.
func (s *Server) waitPebbleReady(ctx context.Context, procs ...*process) error {
	return poll(ctx, procs, func() bool {
		for _, url := range []string{s.DirectoryURL, s.mgmtURL + "/roots/0"} {
			if _, err := s.get(ctx, url); err != nil {
				return false
			}
		}
		return true
	})
}

// poll calls ready every 50 ms until it returns true. It gives up when a
// process exits or says a port was taken, or when ctx ends.
func poll(ctx context.Context, procs []*process, ready func() bool) error {
	for {
		if ready() {
			return nil
		}
		for _, p := range procs {
			// Pebble exits when it cannot bind; challtestsrv logs the
			// error and carries on without that listener.
			if strings.Contains(p.output(), "already in use") {
				return fmt.Errorf("%s: %w", p.name, errPortTaken)
			}
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before it was ready: %w", p.name, p.err)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", readyTimeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches url from one of Pebble's APIs and returns the body of a 200.
func (s *Server) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
	}
	return body, nil
}

// BlockedDomain is a name Pebble refuses to issue for: a CA's policy
// rejection, for tests of failed issuance.
const BlockedDomain = "blocked.test"

// Stop ends Pebble and its DNS server: the CA is down.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// kill ends the running processes, Pebble first, and waits for them to exit.
func (s *Server) kill() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].cmd.Process.Kill()
		<-procs[i].done
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
}

// environ is the parent's environment without PEBBLE_ variables, which
// change how Pebble runs (validation, nonces, extra roots, chain length).
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEBBLE_") {
			env = append(env, kv)
		}
	}
	return env
}

// tailFrom returns the last logTail bytes of a log file after offset start.
func tailFrom(path string, start int64) string {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	off, prefix := min(start, fi.Size()), ""
	if fi.Size()-off > logTail {
		off, prefix = fi.Size()-logTail, "…"
	}
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	return prefix + string(buf[:n])
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// freePorts asks the kernel for n distinct free loopback TCP ports, the
// first of them free for UDP too (for DNS). They are released before use,
// so another process may take one first; Start retries.
func freePorts(n int) ([]int, error) {
	var held []io.Closer // until all are picked, so none is handed out twice
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var ports []int
	for udpTries := 0; len(ports) < n; {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if len(ports) == 0 {
			u, err := net.ListenPacket("udp", loopback(port))
			if err != nil {
				if udpTries++; udpTries == 20 {
					return nil, err
				}
				continue
			}
			held = append(held, u)
		}
		ports = append(ports, port)
	}
	return ports, nil
}

// writeAPICert creates a self-signed CA and a certificate it signs for
// 127.0.0.1 and localhost (ECDSA P-256), writes the certificate and key for
// Pebble's HTTPS listeners, and returns a pool with the CA.
func writeAPICert(certFile, keyFile, caFile string) (*x509.CertPool, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		// A nil SerialNumber gets a random one.
		Subject:               pkix.Name{CommonName: "pebbletest API CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pebbletest API"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(7 * 24 * time.Hour),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}

// queryA sends one DNS query for the A records of name to addr over network
// ("udp" or "tcp") and returns the addresses in the answer.
func queryA(ctx context.Context, network, addr, name string) ([]netip.Addr, error) {
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	id := binary.BigEndian.Uint16(idb[:])
	// Header: ID, flags (RD), one question, no other records.
	msg := []byte{idb[0], idb[1], 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("bad DNS name %q", name)
		}
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0, 0, 1, 0, 1) // root, QTYPE A, QCLASS IN

	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	var resp []byte
	if network == "tcp" {
		// Over TCP each message is prefixed with its length.
		if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)); err != nil {
			return nil, err
		}
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return nil, err
		}
		resp = make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(conn, resp); err != nil {
			return nil, err
		}
	} else {
		if _, err := conn.Write(msg); err != nil {
			return nil, err
		}
		resp = make([]byte, 4096)
		n, err := conn.Read(resp)
		if err != nil {
			return nil, err
		}
		resp = resp[:n]
	}
	return parseA(resp, id)
}

// parseA returns the A records in the answer section of a DNS response.
func parseA(b []byte, id uint16) ([]netip.Addr, error) {
	if len(b) < 12 {
		return nil, errors.New("short DNS response")
	}
	if got := binary.BigEndian.Uint16(b); got != id {
		return nil, fmt.Errorf("DNS response ID %d, want %d", got, id)
	}
	flags := binary.BigEndian.Uint16(b[2:])
	if flags&0x8000 == 0 {
		return nil, errors.New("DNS message is not a response")
	}
	if rcode := flags & 0x000f; rcode != 0 {
		return nil, fmt.Errorf("DNS response code %d", rcode)
	}
	qd, an := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	off := 12
	skipName := func() error {
		for {
			if off >= len(b) {
				return errors.New("truncated DNS name")
			}
			l := int(b[off])
			switch {
			case l == 0:
				off++
				return nil
			case l&0xc0 == 0xc0: // compression pointer ends the name
				off += 2
				return nil
			}
			off += 1 + l
		}
	}
	for range qd {
		if err := skipName(); err != nil {
			return nil, err
		}
		off += 4 // QTYPE, QCLASS
	}
	var addrs []netip.Addr
	for range an {
		if err := skipName(); err != nil {
			return nil, err
		}
		if off+10 > len(b) {
			return nil, errors.New("truncated DNS record")
		}
		typ, class := binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(b[off+2:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return nil, errors.New("truncated DNS record data")
		}
		if typ == 1 && class == 1 && rdlen == 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(b[off:off+4])))
		}
		off += rdlen
	}
	return addrs, nil
}
