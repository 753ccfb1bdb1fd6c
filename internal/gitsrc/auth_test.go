package gitsrc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshKey writes a new ed25519 private key (encrypted when passphrase is
// set) and returns its path and public key.
func sshKey(t *testing.T, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return path, sshPub
}

// knownHosts writes a known_hosts file with one line per host and key.
func knownHosts(t *testing.T, path string, key ssh.PublicKey, hosts ...string) string {
	t.Helper()
	var lines []string
	for _, h := range hosts {
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(h)}, key))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newHostKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthMethod(t *testing.T) {
	keyFile, _ := sshKey(t, "")
	encKeyFile, _ := sshKey(t, "pass phrase")
	host := newHostKey(t)
	kh := knownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), host.PublicKey(), "example.com", "git.example.com:2222")

	t.Run("https", func(t *testing.T) {
		for _, tt := range []struct {
			url      string
			c        Credentials
			user, pw string
		}{
			{"https://github.com/org/site.git", Credentials{Password: "tok"}, "git", "tok"},
			{"https://gitlab.com/org/site.git", Credentials{Username: "oauth2", Password: "tok"}, "oauth2", "tok"},
			{"https://x:embedded@gitea.local/org/site.git", Credentials{Password: "tok"}, "git", "tok"},
			{"http://gitea.local:3000/org/site.git", Credentials{Username: "me", Password: "pw"}, "me", "pw"},
			{"https://gitea.local/org/site.git", Credentials{Username: "tokenAsUser"}, "tokenAsUser", ""},
		} {
			am, err := tt.c.AuthMethod(tt.url)
			ba, ok := am.(*githttp.BasicAuth)
			if err != nil || !ok || ba.Username != tt.user || ba.Password != tt.pw {
				t.Errorf("AuthMethod(%s) = %#v, %v; want basic auth %s/%s", tt.url, am, err, tt.user, tt.pw)
			}
		}
	})

	t.Run("nil", func(t *testing.T) {
		for _, tt := range []struct {
			url string
			c   Credentials
		}{
			{"file:///srv/git/site.git", Credentials{Password: "tok", SSHKeyFile: keyFile}},
			{"/srv/git/site.git", Credentials{Password: "tok"}},
			{"https://github.com/org/site.git", Credentials{}},
			{"https://user:tok@github.com/org/site.git", Credentials{}},
			{"git@github.com:org/site.git", Credentials{}},
			{"https://github.com/org/site.git", Credentials{KnownHostsFile: kh}},
		} {
			if am, err := tt.c.AuthMethod(tt.url); am != nil || err != nil {
				t.Errorf("AuthMethod(%s) = %#v, %v; want nil, nil", tt.url, am, err)
			}
		}
	})

	t.Run("ssh", func(t *testing.T) {
		other := newHostKey(t)
		for _, tt := range []struct {
			url  string
			c    Credentials
			user string
			addr string // what the client dials
		}{
			{"git@example.com:org/site.git", Credentials{SSHKeyFile: keyFile, KnownHostsFile: kh}, "git", "example.com:22"},
			{"ssh://deploy@example.com/org/site.git", Credentials{SSHKeyFile: keyFile, KnownHostsFile: kh}, "deploy", "example.com:22"},
			{"ssh://example.com/org/site.git", Credentials{SSHKeyFile: keyFile, KnownHostsFile: kh}, "git", "example.com:22"},
			{"git@example.com:org/site.git", Credentials{Username: "bot", SSHKeyFile: keyFile, KnownHostsFile: kh}, "bot", "example.com:22"},
			{"ssh://git@git.example.com:2222/site.git", Credentials{SSHKeyFile: encKeyFile, SSHKeyPassphrase: "pass phrase", KnownHostsFile: kh}, "git", "git.example.com:2222"},
		} {
			am, err := tt.c.AuthMethod(tt.url)
			pk, ok := am.(*gitssh.PublicKeys)
			if err != nil || !ok || pk.User != tt.user || pk.HostKeyCallback == nil {
				t.Errorf("AuthMethod(%s) = %#v, %v; want public keys for %s", tt.url, am, err, tt.user)
				continue
			}
			tcp := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
			if err := pk.HostKeyCallback(tt.addr, tcp, host.PublicKey()); err != nil {
				t.Errorf("%s: known host key refused: %v", tt.url, err)
			}
			if err := pk.HostKeyCallback(tt.addr, tcp, other.PublicKey()); err == nil {
				t.Errorf("%s: unknown host key accepted", tt.url)
			}
			if err := pk.HostKeyCallback("elsewhere.example:22", tcp, host.PublicKey()); err == nil {
				t.Errorf("%s: key accepted for a host not in known_hosts", tt.url)
			}
			if want := []string{ssh.KeyAlgoED25519}; fmt.Sprint(pk.HostKeyAlgorithms) != fmt.Sprint(want) {
				t.Errorf("%s: HostKeyAlgorithms = %v, want %v", tt.url, pk.HostKeyAlgorithms, want)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			url  string
			c    Credentials
			want string
		}{
			{"https://github.com/org/site.git", Credentials{SSHKeyFile: keyFile}, "an ssh key cannot be used with an https URL"},
			{"git@example.com:org/site.git", Credentials{Password: "hunter2"}, "needs an ssh key file"},
			{"git@example.com:org/site.git", Credentials{SSHKeyFile: filepath.Join(t.TempDir(), "nope"), KnownHostsFile: kh}, "no such file"},
			{"git@example.com:org/site.git", Credentials{SSHKeyFile: encKeyFile, KnownHostsFile: kh}, "the key is encrypted and no passphrase is set"},
			{"git@example.com:org/site.git", Credentials{SSHKeyFile: encKeyFile, SSHKeyPassphrase: "wrong-hunter2", KnownHostsFile: kh}, "loading ssh key"},
			{"git@example.com:org/site.git", Credentials{SSHKeyFile: keyFile, KnownHostsFile: filepath.Join(t.TempDir(), "kh")}, "host key checking is never skipped"},
			{"git://example.com/site.git", Credentials{Password: "hunter2"}, "git URLs take no credentials"},
			{"https://user:hunter2@exa mple.com/x", Credentials{Password: "hunter2"}, "parsing repository URL https://***@"},
		} {
			am, err := tt.c.AuthMethod(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("AuthMethod(%s, %v) = %#v, %v; want an error with %q and no secret", tt.url, tt.c, am, err, tt.want)
			}
		}
	})

	t.Run("home known_hosts", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("HOME", home)
		c := Credentials{SSHKeyFile: keyFile}
		_, err := c.AuthMethod("git@example.com:org/site.git")
		if err == nil || !strings.Contains(err.Error(), filepath.Join(home, ".ssh", "known_hosts")) ||
			!strings.Contains(err.Error(), "ssh-keyscan example.com") {
			t.Errorf("without ~/.ssh/known_hosts: %v", err)
		}
		knownHosts(t, filepath.Join(home, ".ssh", "known_hosts"), host.PublicKey(), "example.com")
		am, err := c.AuthMethod("git@example.com:org/site.git")
		if err != nil {
			t.Fatal(err)
		}
		if err := am.(*gitssh.PublicKeys).HostKeyCallback("example.com:22", &net.TCPAddr{}, host.PublicKey()); err != nil {
			t.Errorf("host key from ~/.ssh/known_hosts refused: %v", err)
		}
	})
}

func TestCredentialsNotPrinted(t *testing.T) {
	c := Credentials{Username: "bot", Password: "hunter2", SSHKeyFile: "/k", SSHKeyPassphrase: "swordfish"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "creds", c, "opts", Options{Credentials: c})
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c),
		fmt.Sprintf("%v %+v", Options{Credentials: c}, Options{Credentials: c}),
		logged.String(),
	} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "swordfish") || !strings.Contains(s, "bot") {
			t.Errorf("printed credentials: %s", s)
		}
	}
}

func TestOpenCredentials(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "cache")
	log := slog.New(slog.DiscardHandler)
	c := Credentials{Password: "tok"}
	if _, err := Open(Options{URL: "https://h/x.git", Dir: dir, Logger: log, Credentials: c, Auth: &githttp.BasicAuth{}}); err == nil {
		t.Error("Open with Auth and Credentials succeeded")
	}
	if _, err := Open(Options{URL: "https://h/x.git", Dir: dir, Logger: log, Credentials: Credentials{SSHKeyFile: "/k"}}); err == nil ||
		!strings.Contains(err.Error(), "ssh key") {
		t.Errorf("Open with unusable credentials = %v", err)
	}
	r := f.open(Options{URL: "https://h/x.git", Credentials: c})
	if ba, ok := r.auth.(*githttp.BasicAuth); !ok || ba.Password != "tok" {
		t.Errorf("Open set auth %#v", r.auth)
	}
}

// gitHTTPServer serves the bare repositories under root over smart HTTP
// with git-http-backend, requiring basic auth with password.
func gitHTTPServer(t *testing.T, root, password string) (*httptest.Server, *[]string) {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("no git-http-backend: %v", err)
	}
	var (
		mu    sync.Mutex
		users []string
	)
	h := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=tester",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pw, ok := req.BasicAuth()
		if !ok || pw != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		users = append(users, user)
		mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv, &users
}

func TestHTTPBasicAuth(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	bare := f.bareRemote()
	const token = "s3cret-token"
	srv, users := gitHTTPServer(t, filepath.Dir(bare), token)
	url := srv.URL + "/" + filepath.Base(bare)
	ctx := context.Background()

	r := f.open(Options{URL: url, Credentials: Credentials{Password: token}})
	if got, err := r.Resolve(ctx, "main"); err != nil || got != c1 {
		t.Fatalf("Resolve over authenticated http = %s, %v", got, err)
	}
	mustFetch(t, r, "main")
	if err := r.PushTag(ctx, "live", c1); err != nil {
		t.Fatalf("PushTag over http: %v", err)
	}
	if err := r.PushNote(ctx, "", c1, "over http"); err != nil {
		t.Fatalf("PushNote over http: %v", err)
	}
	if got := f.bareGit(bare, "rev-parse", "live"); got != string(c1) {
		t.Errorf("live = %s", got)
	}
	if got := f.noteOf(bare, c1); got != "over http" {
		t.Errorf("note = %q", got)
	}
	for _, u := range *users {
		if u != DefaultHTTPUsername {
			t.Errorf("server saw user %q, want %q", u, DefaultHTTPUsername)
		}
	}

	for name, c := range map[string]Credentials{"wrong token": {Password: "wrong-" + token}, "none": {}} {
		r := f.open(Options{URL: url, Credentials: c})
		_, err := r.Resolve(ctx, "main")
		if !errors.Is(err, transport.ErrAuthenticationRequired) && !errors.Is(err, transport.ErrAuthorizationFailed) {
			t.Errorf("%s: Resolve = %v, want an auth error", name, err)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
		if err := r.PushTag(ctx, "live", c1); err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("%s: PushTag = %v", name, err)
		}
	}
}

// sshGitServer is an in-process ssh server that runs git-upload-pack and
// git-receive-pack for clients with the given key. It offers an ECDSA and
// an ed25519 host key; an ECDSA key is what a client picks by default.
type sshGitServer struct {
	addr    string
	ed25519 ssh.Signer
	mu      sync.Mutex
	users   []string
}

func startSSHGitServer(t *testing.T, clientKey ssh.PublicKey) *sshGitServer {
	t.Helper()
	s := &sshGitServer{ed25519: newHostKey(t)}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := ssh.NewSignerFromKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if !bytes.Equal(k.Marshal(), clientKey.Marshal()) {
				return nil, errors.New("unknown key")
			}
			s.mu.Lock()
			s.users = append(s.users, c.User())
			s.mu.Unlock()
			return nil, nil
		},
	}
	cfg.AddHostKey(ecSigner)
	cfg.AddHostKey(s.ed25519)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serveConn(conn, cfg)
		}
	}()
	return s
}

func (s *sshGitServer) serveConn(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only") // the client sees the channel fail
			continue
		}
		ch, in, err := nc.Accept()
		if err != nil {
			return
		}
		go serveGitSession(ch, in)
	}
}

// serveGitSession runs one git command. Replies and the exit status are
// best effort: a client that is gone has nobody to report to.
func serveGitSession(ch ssh.Channel, in <-chan *ssh.Request) {
	defer ch.Close()
	for req := range in {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		line := string(req.Payload[4 : 4+binary.BigEndian.Uint32(req.Payload)])
		name, arg, _ := strings.Cut(line, " ")
		if name != "git-upload-pack" && name != "git-receive-pack" {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command(name, strings.Trim(arg, "'"))
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return
		}
		status := uint32(0)
		if err := cmd.Start(); err != nil {
			status = 127
		} else {
			go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
			if err := cmd.Wait(); err != nil {
				status = 1
			}
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

func TestSSHAuth(t *testing.T) {
	f := newFixture(t)
	f.write("index.md", "one")
	c1 := f.commit("one")
	bare := f.bareRemote()
	keyFile, pub := sshKey(t, "pass")
	srv := startSSHGitServer(t, pub)
	kh := knownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), srv.ed25519.PublicKey(), srv.addr)
	url := "ssh://deploy@" + srv.addr + bare
	ctx := context.Background()

	c := Credentials{SSHKeyFile: keyFile, SSHKeyPassphrase: "pass", KnownHostsFile: kh}
	r := f.open(Options{URL: url, Credentials: c})
	if got, err := r.Resolve(ctx, "main"); err != nil || got != c1 {
		t.Fatalf("Resolve over ssh = %s, %v", got, err)
	}
	mustFetch(t, r, "main")
	if err := r.PushTag(ctx, "live", c1); err != nil {
		t.Fatalf("PushTag over ssh: %v", err)
	}
	if err := r.PushNote(ctx, "", c1, "over ssh"); err != nil {
		t.Fatalf("PushNote over ssh: %v", err)
	}
	if got := f.noteOf(bare, c1); got != "over ssh" {
		t.Errorf("note = %q", got)
	}
	srv.mu.Lock()
	for _, u := range srv.users {
		if u != "deploy" {
			t.Errorf("server saw user %q, want deploy", u)
		}
	}
	srv.mu.Unlock()

	// A server whose key known_hosts does not list is refused.
	wrong := knownHosts(t, filepath.Join(t.TempDir(), "known_hosts"), newHostKey(t).PublicKey(), srv.addr)
	r = f.open(Options{URL: url, Credentials: Credentials{SSHKeyFile: keyFile, SSHKeyPassphrase: "pass", KnownHostsFile: wrong}})
	if _, err := r.Resolve(ctx, "main"); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("Resolve with a wrong host key = %v, want a host key error", err)
	}
}
