// Package certs obtains and renews the TLS certificates sitehost serves
// with, through certmagic and any ACME CA: production domains are managed
// from the start, preview and permalink hosts get theirs on demand at their
// first handshake — but only hosts the caller vouches for, so an unknown
// name never causes an ACME order.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/sitehost/sitehost/internal/site"
)

// Options configure a Manager.
type Options struct {
	// Storage keeps accounts, certificates and locks: a folder, or the
	// bucket shared by every replica (certstore).
	Storage certmagic.Storage
	// CA is the ACME directory URL (default Let's Encrypt).
	CA    string
	Email string
	// CARoots are trusted for the CA's own API (a private CA, Pebble); nil
	// trusts the system roots.
	CARoots *x509.CertPool
	// HTTPPort and TLSPort are where ACME challenges arrive: the ports of
	// sitehost's HTTP and HTTPS listeners (80 and 443 in production).
	// ListenHost is their host part.
	HTTPPort, TLSPort int
	ListenHost        string
	// Disable one challenge type (both on by default).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
	// OnDemand says whether a host that is not managed may have a
	// certificate made at its first handshake; nil refuses every such host.
	OnDemand func(ctx context.Context, host string) error
	Logger   *slog.Logger
}

// Manager obtains, renews and serves certificates.
type Manager struct {
	opts  Options
	log   *slog.Logger
	cache *certmagic.Cache
	// cfg manages the configured domains up front; demand makes
	// certificates at the first handshake for hosts OnDemand vouches for.
	// certmagic defers everything to handshakes on a config with OnDemand
	// set, hence two, sharing one cache and one storage.
	cfg, demand *certmagic.Config
	issuer      *certmagic.ACMEIssuer

	mu      sync.Mutex
	managed map[string]bool
	events  map[string]event // last issuance event per domain
}

type event struct {
	state   string // obtaining, obtained, failed
	err     string
	renewal bool
	at      time.Time
}

// New returns a Manager; nothing is ordered until Manage.
func New(opts Options) (*Manager, error) {
	if opts.Storage == nil {
		return nil, errors.New("certs: no storage")
	}
	if opts.CA == "" {
		opts.CA = certmagic.LetsEncryptProductionCA
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, log: opts.Logger, managed: map[string]bool{}, events: map[string]event{}}
	zl := zapLogger(opts.Logger)
	// An explicit cache and configs, never certmagic.Default: two Managers
	// (tests, or reloads) must not share state.
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, n := range c.Names {
				if m.managed[site.Hostname(n)] {
					return m.cfg, nil
				}
			}
			return m.demand, nil
		},
		Logger: zl,
	})
	testCA := opts.CA
	if opts.CA == certmagic.LetsEncryptProductionCA {
		testCA = "" // certmagic's default: retries rehearse on Let's Encrypt staging
	}
	issuer := certmagic.ACMEIssuer{
		CA: opts.CA, TestCA: testCA, Email: opts.Email, Agreed: true,
		TrustedRoots:            opts.CARoots,
		AltHTTPPort:             opts.HTTPPort,
		AltTLSALPNPort:          opts.TLSPort,
		ListenHost:              opts.ListenHost,
		DisableHTTPChallenge:    opts.DisableHTTPChallenge,
		DisableTLSALPNChallenge: opts.DisableTLSALPNChallenge,
		Logger:                  zl,
	}
	m.cfg = certmagic.New(m.cache, certmagic.Config{Storage: opts.Storage, Logger: zl, OnEvent: m.onEvent})
	m.issuer = certmagic.NewACMEIssuer(m.cfg, issuer)
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	m.demand = certmagic.New(m.cache, certmagic.Config{
		Storage: opts.Storage, Logger: zl, OnEvent: m.onEvent,
		OnDemand: &certmagic.OnDemandConfig{
			// Our GetCertificate checks first; this is certmagic's own
			// gate, kept so no path inside it can order for a stranger.
			DecisionFunc: func(ctx context.Context, name string) error { return m.allowed(ctx, name) },
		},
	})
	m.demand.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.demand, issuer)}
	return m, nil
}

// Manage makes domains the managed set: new ones are obtained in the
// background (certmagic retries failures with backoff) and renewed from
// then on; ones no longer listed stop being served. It is all or nothing:
// on error the managed set is what it was.
func (m *Manager) Manage(ctx context.Context, domains []string) error {
	if err := CheckNames(domains); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, d := range domains {
		want[site.Hostname(d)] = true
	}
	m.mu.Lock()
	var added []string
	var removed []certmagic.SubjectIssuer
	for d := range want {
		if !m.managed[d] {
			added = append(added, d)
		}
	}
	for d := range m.managed {
		if !want[d] {
			removed = append(removed, certmagic.SubjectIssuer{Subject: d})
		}
	}
	m.mu.Unlock()
	slices.Sort(added)
	if len(added) > 0 {
		m.log.Info("managing certificates", "domains", added, "ca", m.opts.CA)
		// Fails when storage cannot be read (a certificate is loaded from it
		// first): what this call began managing stops again.
		if err := m.cfg.ManageAsync(ctx, added); err != nil {
			undo := make([]certmagic.SubjectIssuer, len(added))
			for i, d := range added {
				undo[i] = certmagic.SubjectIssuer{Subject: d}
			}
			m.cache.RemoveManaged(undo)
			return fmt.Errorf("managing certificates for %s: %w", strings.Join(added, ", "), err)
		}
	}
	m.mu.Lock()
	m.managed = want
	m.mu.Unlock()
	if len(removed) > 0 {
		m.cache.RemoveManaged(removed)
	}
	return nil
}

// CheckNames reports the first name that cannot have a certificate
// (certmagic's rules: no empty labels, spaces or misplaced wildcards), so
// a caller can refuse a set of names before managing any of them.
func CheckNames(domains []string) error {
	for _, d := range domains {
		if n := site.Hostname(d); n == "" || !certmagic.SubjectQualifiesForCert(n) {
			return fmt.Errorf("certs: %q cannot have a certificate", d)
		}
	}
	return nil
}

// Renew renews domain's certificate now, even if it is not due. On failure
// the current certificate keeps serving.
func (m *Manager) Renew(ctx context.Context, domain string) error {
	if err := m.cfg.RenewCertSync(ctx, site.Hostname(domain), true); err != nil {
		return fmt.Errorf("renewing %s: %w", domain, err)
	}
	return nil
}

// Stop ends certificate maintenance.
func (m *Manager) Stop() { m.cache.Stop() }

// TLSConfig is the HTTPS listener's configuration: certificates by SNI,
// TLS-ALPN-01 challenges, HTTP/2.
func (m *Manager) TLSConfig() *tls.Config {
	c := m.cfg.TLSConfig()
	c.GetCertificate = m.getCertificate
	c.NextProtos = append([]string{"h2", "http/1.1"}, c.NextProtos...)
	c.MinVersion = tls.VersionTLS12
	return c
}

// getCertificate refuses hosts that are neither managed nor vouched for
// before certmagic sees them: no storage lookups and no orders for
// strangers, and the handshake fails at once.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := site.Hostname(hello.ServerName)
	if name == "" {
		return nil, errors.New("certs: no server name (SNI) in the handshake")
	}
	m.mu.Lock()
	managed := m.managed[name]
	m.mu.Unlock()
	if managed {
		return m.cfg.GetCertificate(hello)
	}
	if err := m.allowed(hello.Context(), name); err != nil {
		return nil, err
	}
	return m.demand.GetCertificate(hello)
}

func (m *Manager) allowed(ctx context.Context, name string) error {
	m.mu.Lock()
	ok := m.managed[name]
	m.mu.Unlock()
	if ok {
		return nil
	}
	if m.opts.OnDemand == nil {
		return fmt.Errorf("certs: %s is not served here", name)
	}
	if err := m.opts.OnDemand(ctx, name); err != nil {
		return fmt.Errorf("certs: %s: %w", name, err)
	}
	return nil
}

// HTTPChallengeHandler answers ACME HTTP-01 challenges (from this process
// or, through the shared storage, any replica's) and passes the rest on.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// Status is a domain's certificate as people and monitoring see it.
type Status struct {
	Domain string `json:"domain"`
	// State: "valid" (a certificate is serving), "obtaining", "failed"
	// (no certificate; being retried), or "none" (not yet attempted).
	State    string    `json:"state"`
	NotAfter time.Time `json:"not_after,omitzero"`
	Issuer   string    `json:"issuer,omitempty"`
	// Error is the last issuance or renewal failure, kept while a valid
	// certificate serves on after a failed renewal.
	Error    string    `json:"error,omitempty"`
	FailedAt time.Time `json:"failed_at,omitzero"`
}

// Status reports domain's certificate.
func (m *Manager) Status(domain string) Status {
	domain = site.Hostname(domain)
	st := Status{Domain: domain, State: "none"}
	m.mu.Lock()
	ev, ok := m.events[domain]
	m.mu.Unlock()
	if ok {
		switch ev.state {
		case "obtaining":
			st.State = "obtaining"
		case "failed":
			st.State, st.Error, st.FailedAt = "failed", ev.err, ev.at
		}
	}
	for _, c := range m.cache.AllMatchingCertificates(domain) {
		if c.Leaf == nil || time.Now().After(c.Leaf.NotAfter) {
			continue
		}
		if c.Leaf.NotAfter.After(st.NotAfter) {
			st.State, st.NotAfter = "valid", c.Leaf.NotAfter
			st.Issuer = c.Leaf.Issuer.CommonName
		}
	}
	return st
}

func (m *Manager) onEvent(_ context.Context, name string, data map[string]any) error {
	var state string
	switch name {
	case "cert_obtaining":
		state = "obtaining"
	case "cert_obtained":
		state = "obtained"
	case "cert_failed":
		state = "failed"
	default:
		return nil
	}
	id, _ := data["identifier"].(string)
	ev := event{state: state, at: time.Now()}
	ev.renewal, _ = data["renewal"].(bool)
	if err, ok := data["error"].(error); ok {
		ev.err = err.Error()
	}
	if state == "failed" {
		m.log.Warn("certificate issuance failed; certmagic retries with backoff", "domain", id, "renewal", ev.renewal, "err", ev.err)
	}
	m.mu.Lock()
	prev := m.events[id]
	if state == "obtaining" && prev.state == "failed" {
		// Keep the reason visible while the retry runs.
		ev.err, ev.at, ev.state = prev.err, prev.at, "failed"
	}
	m.events[id] = ev
	m.mu.Unlock()
	return nil
}
