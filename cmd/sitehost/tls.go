package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/sitehost/sitehost/internal/certs"
	"github.com/sitehost/sitehost/internal/certs/certstore"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/store"
)

// newCerts sets up certificates: in data_dir with an fs store, in the
// bucket with s3, so that replicas share them and order each only once.
func (s *server) newCerts(st store.Store, opts serverOptions) (*certs.Manager, error) {
	sc := s.cfg.Server
	var storage certmagic.Storage = &certmagic.FileStorage{Path: filepath.Join(sc.DataDir, "certs")}
	if sc.Storage.Kind == "s3" {
		storage = certstore.New(certstore.Options{Store: st, Logger: s.log.With("component", "certstore")})
	}
	var roots *x509.CertPool
	if sc.ACME.CARoot != "" {
		pem, err := os.ReadFile(sc.ACME.CARoot)
		if err != nil {
			return nil, fmt.Errorf("reading server.acme.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.acme.ca_root %s: no PEM certificates in it", sc.ACME.CARoot)
		}
	}
	httpHost, httpPort, _ := net.SplitHostPort(s.httpLn.Addr().String())
	_, tlsPort, _ := net.SplitHostPort(s.httpsLn.Addr().String())
	hp, _ := strconv.Atoi(httpPort)
	tp, _ := strconv.Atoi(tlsPort)
	if ip := net.ParseIP(httpHost); ip != nil && ip.IsUnspecified() {
		httpHost = ""
	}
	return certs.New(certs.Options{
		Storage: storage, CA: sc.ACME.CA, Email: sc.ACME.Email, CARoots: roots,
		HTTPPort: hp, TLSPort: tp, ListenHost: httpHost,
		DisableHTTPChallenge: opts.DisableHTTPChallenge, DisableTLSALPNChallenge: opts.DisableTLSALPNChallenge,
		OnDemand: s.onDemand,
		Logger:   s.log.With("component", "certs"),
	})
}

// onDemand vouches for preview, branch and permalink hosts that name an
// existing channel or deploy of a configured site; every other host is
// refused, so no one can make sitehost order certificates for names it
// does not serve. (Production and alias domains are obtained up front.)
func (s *server) onDemand(ctx context.Context, host string) error {
	t, ok := s.rt.Load().routes.Resolve(host)
	if !ok || !t.Preview {
		return errors.New("not a host sitehost serves")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if t.Deploy != "" {
		_, err = s.publisher.Manifest(ctx, t.Site, t.Deploy)
	} else {
		_, err = s.publisher.Pointer(ctx, t.Site, t.Channel)
	}
	if errors.Is(err, manifest.ErrNotFound) {
		return errors.New("no such preview or deploy")
	}
	return err
}
