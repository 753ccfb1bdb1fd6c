package gitsrc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// DefaultHTTPUsername is sent with a password or token when Username is
// empty. GitHub, GitLab and Gitea accept any non-empty user name with a
// personal access token (GitHub App tokens conventionally use
// "x-access-token", GitLab OAuth tokens "oauth2"; set Username for those).
const DefaultHTTPUsername = "git"

// Credentials are a site's git credentials, as read from the environment
// variables its config names. The zero value means anonymous access (or
// whatever userinfo the URL itself carries).
type Credentials struct {
	// Username for https; the ssh login user, overriding the URL's
	// ("git" for git@github.com:org/repo).
	Username string
	// Password is an https password or access token. It is never used
	// over ssh.
	Password string
	// SSHKeyFile is a private key file (OpenSSH, PKCS#1/#8 or ECDSA PEM)
	// for ssh:// and scp-like URLs.
	SSHKeyFile string
	// SSHKeyPassphrase decrypts SSHKeyFile, if it is encrypted.
	SSHKeyPassphrase string
	// KnownHostsFile verifies the ssh server's host key; default
	// ~/.ssh/known_hosts. Host key checking is never skipped.
	KnownHostsFile string
}

// IsZero reports whether no credential is set.
func (c Credentials) IsZero() bool { return c == Credentials{} }

// AuthMethod returns the go-git auth for url:
//
//   - https:// and http://: basic auth with Username (default
//     DefaultHTTPUsername when only a Password/token is given) and
//     Password. Over http:// they travel in clear text.
//   - ssh:// and scp-like user@host:path: the key in SSHKeyFile, with the
//     host key checked against KnownHostsFile (default
//     ~/.ssh/known_hosts); a missing known_hosts file is an error, never
//     a silent InsecureIgnoreHostKey.
//   - file:// and local paths, and zero Credentials for any URL: nil, so
//     go-git uses the URL's own userinfo or no auth.
//
// Credentials that cannot apply to the URL's kind (a key file for https,
// a password alone for ssh) are an error rather than being ignored.
// Errors never contain the password or passphrase.
func (c Credentials) AuthMethod(url string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, fmt.Errorf("parsing repository URL %s: %w", MaskCredentials(url), masked(err))
	}
	if c.IsZero() {
		return nil, nil
	}
	switch ep.Protocol {
	case "file":
		return nil, nil
	case "http", "https":
		if c.SSHKeyFile != "" {
			return nil, fmt.Errorf("credentials for %s: an ssh key cannot be used with an %s URL", MaskCredentials(url), ep.Protocol)
		}
		if c.Username == "" && c.Password == "" {
			return nil, nil // only KnownHostsFile or a passphrase: nothing to send
		}
		user := c.Username
		if user == "" {
			user = DefaultHTTPUsername
		}
		return &githttp.BasicAuth{Username: user, Password: c.Password}, nil
	case "ssh":
		return c.sshAuth(url, ep)
	default:
		return nil, fmt.Errorf("credentials for %s: %s URLs take no credentials", MaskCredentials(url), ep.Protocol)
	}
}

func (c Credentials) sshAuth(url string, ep *transport.Endpoint) (transport.AuthMethod, error) {
	where := MaskCredentials(url)
	if c.SSHKeyFile == "" {
		return nil, fmt.Errorf("credentials for %s: an ssh URL needs an ssh key file (password authentication over ssh is not supported)", where)
	}
	user := c.Username
	if user == "" {
		user = ep.User
	}
	if user == "" {
		user = gitssh.DefaultUsername
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, c.SSHKeyFile, c.SSHKeyPassphrase)
	if err != nil {
		if c.SSHKeyPassphrase == "" && isEncryptedKey(c.SSHKeyFile) {
			return nil, fmt.Errorf("loading ssh key %s for %s: the key is encrypted and no passphrase is set", c.SSHKeyFile, where)
		}
		// x/crypto's messages contain neither the key nor the passphrase.
		return nil, fmt.Errorf("loading ssh key %s for %s: %w", c.SSHKeyFile, where, err)
	}
	khFile := c.KnownHostsFile
	if khFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: finding ~/.ssh/known_hosts: %w", where, err)
		}
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if _, err := os.Stat(khFile); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("credentials for %s: no known_hosts file at %s to verify the server's host key: "+
				"add it (ssh-keyscan %s >> %s, then check the fingerprint) or set the known hosts file; host key checking is never skipped",
				where, khFile, ep.Host, khFile)
		}
		return nil, fmt.Errorf("credentials for %s: reading known_hosts: %w", where, err)
	}
	db, err := gitssh.NewKnownHostsDb(khFile)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: reading known_hosts %s: %w", where, khFile, err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	keys.HostKeyCallback = db.HostKeyCallback()
	// Offer only the algorithms of the keys known_hosts has for this host,
	// or the server may present another key type and fail the check.
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(strings.Trim(ep.Host, "[]"), strconv.Itoa(port)))
	return keys, nil
}

// String describes c without its secrets, so a logged or printed Options
// never shows a password or passphrase.
func (c Credentials) String() string {
	set := func(s string) string {
		if s == "" {
			return `""`
		}
		return "***"
	}
	return fmt.Sprintf("Credentials{Username:%q Password:%s SSHKeyFile:%q SSHKeyPassphrase:%s KnownHostsFile:%q}",
		c.Username, set(c.Password), c.SSHKeyFile, set(c.SSHKeyPassphrase), c.KnownHostsFile)
}

// GoString is String, for %#v.
func (c Credentials) GoString() string { return c.String() }

// LogValue keeps secrets out of slog output.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

func isEncryptedKey(file string) bool {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	_, err = ssh.ParsePrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	return errors.As(err, &missing)
}
