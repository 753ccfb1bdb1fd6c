// Package npmtest gives tests a registry that counts the requests it
// gets: a reverse proxy on 127.0.0.1 in front of the real npm registry,
// which also serves packages a test makes itself (one with a postinstall
// script, which no registry should be asked to host).
package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // npm's shasum field is sha1
	"crypto/sha512"
	cryptotls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Upstream is the registry the proxy forwards to
// (SITEHOST_NPM_UPSTREAM, default npm's own).
func Upstream() string {
	if u := os.Getenv("SITEHOST_NPM_UPSTREAM"); u != "" {
		return u
	}
	return "https://registry.npmjs.org/"
}

// skip skips the test, or fails it under CI=true, where .ci/run installs
// what is missing.
func skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Tools returns the node and npm tests run: SITEHOST_NODE (Node 22.15 or
// later, what Hugo's Node tools need; .ci/run installs one) or node on
// PATH, and npm on PATH.
func Tools(t testing.TB) (node, npm string) {
	t.Helper()
	node = os.Getenv("SITEHOST_NODE")
	if node == "" {
		p, err := exec.LookPath("node")
		if err != nil {
			skip(t, "no node (set SITEHOST_NODE or put node on PATH)")
		}
		node = p
	}
	real, err := filepath.EvalSymlinks(node)
	if err != nil {
		skip(t, "node %s: %v", node, err)
	}
	npm, err = exec.LookPath("npm")
	if err != nil {
		skip(t, "no npm on PATH")
	}
	return real, npm
}

// Registry is the counting proxy.
type Registry struct {
	URL      string // ends with "/"
	requests atomic.Int64
	conns    atomic.Int64
	mu       sync.Mutex
	local    map[string][]byte // path → body
	private  map[string]string // package path prefix → the token it needs
	paths    []string
	// Token is what Site authenticates with ("": nothing).
	Token string
	// CAFile is the PEM of the registry's own CA for a TLS registry
	// (NewTLSRegistry), "" for plain http.
	CAFile string
}

// NewRegistry starts a Registry, closed with the test. It skips the test
// (fails under CI) when the upstream registry cannot be reached.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	return newRegistry(t, false)
}

// NewTLSRegistry is NewRegistry over https, with a certificate of its own
// CA (CAFile), as a registry behind a company's TLS proxy looks to npm.
func NewTLSRegistry(t testing.TB) *Registry {
	t.Helper()
	return newRegistry(t, true)
}

func newRegistry(t testing.TB, tls bool) *Registry {
	t.Helper()
	up, err := url.Parse(Upstream())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, up.JoinPath("is-number").String(), nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		skip(t, "npm registry %s unreachable: %v", up, err)
	} else {
		resp.Body.Close()
	}
	r := &Registry{local: map[string][]byte{}, private: map[string]string{}}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(up)
		pr.Out.Host = up.Host
	}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		body, ok := r.local[req.URL.Path]
		var need string
		for prefix, tok := range r.private {
			if req.URL.Path == prefix || strings.HasPrefix(req.URL.Path, prefix+"/") {
				need = tok
			}
		}
		r.mu.Unlock()
		if need != "" && req.Header.Get("Authorization") != "Bearer "+need {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound) // as npm answers for a private package
			return
		}
		if ok {
			w.Write(body) //nolint:errcheck // the client's problem
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	if !tls {
		srv.Start()
		t.Cleanup(srv.Close)
		r.URL = srv.URL + "/"
		return r
	}
	// A certificate for localhost, as a registry has one for its name:
	// npm's proxy agent checks an IP address's against "localhost".
	cert, pemCert := localhostCert(t)
	srv.TLS = &cryptotls.Config{Certificates: []cryptotls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "registry-ca.pem")
	if err := os.WriteFile(ca, pemCert, 0o644); err != nil {
		t.Fatal(err)
	}
	r.CAFile = ca
	r.URL = "https://localhost:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port) + "/"
	return r
}

// localhostCert is a certificate for localhost and 127.0.0.1 from a CA
// of its own, and the CA's PEM.
func localhostCert(t testing.TB) (cryptotls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sitehost test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return cryptotls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// Connections is how many connections the registry has accepted.
func (r *Registry) Connections() int64 { return r.conns.Load() }

// Requests is how many requests the registry has had.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// Paths are the paths asked for so far.
func (r *Registry) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// Private makes the local package name answer only requests with the
// token.
func (r *Registry) Private(name, token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.private["/"+name] = token
}

// AddPackage serves name@version (unscoped) from the registry itself, with
// files (package/… in the tarball); pkg is its package.json as a map, to
// which name and version are added.
func (r *Registry) AddPackage(t testing.TB, name, version string, pkg map[string]any, files map[string]string) {
	t.Helper()
	pkg["name"], pkg["version"] = name, version
	pj, err := json.Marshal(pkg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(p string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + p, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data) //nolint:errcheck // a bytes.Buffer
	}
	add("package.json", pj)
	for p, data := range files {
		add(p, []byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	tgz := buf.Bytes()
	s512 := sha512.Sum512(tgz)
	s1 := sha1.Sum(tgz) //nolint:gosec // npm's shasum
	tarPath := "/" + name + "/-/" + name + "-" + version + ".tgz"
	manifest := map[string]any{}
	for k, v := range pkg {
		manifest[k] = v
	}
	if scripts, ok := pkg["scripts"].(map[string]any); ok {
		for _, s := range []string{"preinstall", "install", "postinstall"} {
			if _, ok := scripts[s]; ok {
				manifest["hasInstallScript"] = true
			}
		}
	}
	manifest["dist"] = map[string]any{
		"tarball":   strings.TrimSuffix(r.URL, "/") + tarPath,
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
		"shasum":    hex.EncodeToString(s1[:]),
	}
	packument, err := json.Marshal(map[string]any{
		"name":      name,
		"dist-tags": map[string]string{"latest": version},
		"versions":  map[string]any{version: manifest},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.local["/"+name] = packument
	r.local[tarPath] = tgz
	r.mu.Unlock()
}

// Site writes package.json (with deps) into dir and makes its
// package-lock.json as `npm install --package-lock-only` does, against
// the registry, without running anything.
func Site(t testing.TB, dir string, r *Registry, npm, node string, pkg map[string]any) {
	t.Helper()
	if pkg["name"] == nil {
		pkg["name"] = "site"
	}
	pj, err := json.MarshalIndent(pkg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pj, 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.Symlink(node, filepath.Join(home, "node")); err != nil {
		t.Fatal(err)
	}
	if r.Token != "" {
		u, _ := url.Parse(r.URL)
		rc := "//" + u.Host + u.Path + ":_authToken=" + r.Token + "\n"
		if err := os.WriteFile(filepath.Join(home, "npmrc"), []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(npm, "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
		"--registry="+r.URL, "--cache="+filepath.Join(home, "cache"), "--userconfig="+filepath.Join(home, "npmrc"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + home, "HOME=" + home}
	if r.CAFile != "" {
		cmd.Env = append(cmd.Env, "NODE_EXTRA_CA_CERTS="+r.CAFile)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install --package-lock-only: %v\n%s", err, out)
	}
}
