package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/accesslog"
	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/blobcache"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/certs"
	"github.com/sitehost/sitehost/internal/certs/certstore"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/metrics"
	"github.com/sitehost/sitehost/internal/preview"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
	"github.com/sitehost/sitehost/internal/store/s3store"
	"github.com/sitehost/sitehost/internal/watch"
)

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("c", "sites.yaml", "config file")
	repoURL := fs.String("config-repo", "", "keep the config in this git repository instead of a local file")
	repoRef := fs.String("config-ref", "main", "with --config-repo: the branch, tag or commit to follow")
	repoPath := fs.String("config-path", "sites.yaml", "with --config-repo: the config file's path in the repository")
	repoPoll := fs.Duration("config-poll", time.Minute, "with --config-repo: how often to look for new commits")
	repoSecret := fs.String("config-webhook-secret-env", "", "with --config-repo: environment variable holding its webhook secret")
	if err := fs.Parse(args); err != nil {
		return exitError{err}
	}
	logger := newLogger(stderr, getenv)
	opts := serverOptions{Getenv: getenv, Logger: logger}
	var data []byte
	name := *path
	if *repoURL != "" {
		secret := ""
		if *repoSecret != "" {
			secret = getenv(*repoSecret)
		}
		cr, err := openConfigRepo(*repoURL, *repoRef, *repoPath, configRepoPath(), secret, logger.With("component", "config-repo"))
		if err != nil {
			return err
		}
		commit, d, err := cr.read(ctx)
		if err != nil {
			return err
		}
		// Relative paths in a config from git resolve against the working
		// directory: the file's folder exists only in the repository.
		cr.commit, data, name = commit, d, filepath.Base(*repoPath)
		opts.ConfigRepo, opts.ConfigPoll = cr, *repoPoll
		logger.Info("config from git", "repo", gitsrc.MaskCredentials(*repoURL), "ref", *repoRef, "path", *repoPath, "commit", commit.Short())
	} else {
		d, err := os.ReadFile(*path)
		if err != nil {
			return fmt.Errorf("loading config: %w", err)
		}
		data = d
	}
	cfg, err := parseConfig(name, data, stderr)
	if err != nil {
		return err
	}
	opts.ConfigData = data
	srv, err := newServer(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return srv.run(ctx)
}

// parseConfig parses and validates, printing every problem.
func parseConfig(path string, data []byte, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Parse(path, data)
	if err != nil {
		for _, p := range config.Problems(err) {
			fmt.Fprintln(stderr, p)
		}
		if len(config.Problems(err)) == 0 {
			return nil, err
		}
		return nil, exitError{err}
	}
	return cfg, nil
}

type serverOptions struct {
	Getenv func(string) string
	Logger *slog.Logger
	// Exe is the binary that runs builds (tests pass their own).
	Exe string
	// GCInterval is the time between garbage collections (default 1h);
	// GCGrace protects young objects from them (default 1h).
	GCInterval time.Duration
	GCGrace    time.Duration
	// Turn off one ACME challenge type (tests prove each alone).
	DisableHTTPChallenge, DisableTLSALPNChallenge bool
	// ConfigData is the config file as loaded: when set, the file
	// (cfg.File) is watched and every valid change applied.
	ConfigData []byte
	// ConfigPoll re-reads the file this often whatever the events say
	// (default 30s), or polls the config repository.
	ConfigPoll time.Duration
	// ConfigRepo, when set, is where the config comes from instead of a
	// watched file (serve --config-repo).
	ConfigRepo *configRepo
}

// server is sitehost with everything wired: listeners bound, loop ready.
type server struct {
	// cfg is the config the server started with: its server settings hold
	// until a restart. current is the latest valid config, whose sites are
	// served; a reload replaces it.
	cfg        *config.Config
	current    atomic.Pointer[config.Config]
	getenv     func(string) string
	configData []byte // the watched config file as loaded; nil: not watched
	configPoll time.Duration
	configRepo *configRepo                          // serve --config-repo
	primary    atomic.Pointer[map[site.Name]string] // production domain per site, for base URLs
	repos      atomic.Pointer[repoSites]            // webhook routing
	infos      atomic.Pointer[map[site.Name]admin.SiteInfo]
	log        *slog.Logger
	httpLn     net.Listener
	httpsLn    net.Listener // nil without server.https
	adminLn    net.Listener
	loop       *reconcile.Loop
	publisher  *publish.Publisher
	data       *serve.Handler
	admin      http.Handler
	statuses   *statusReporter
	notes      *notifications
	blobs      *blobcache.Cache
	gcEvery    time.Duration
	certs      *certs.Manager // nil without server.https
	metrics    *metrics.Metrics
	journal    *journal.Journal
	accessLog  *slog.Logger // nil: requests are not logged
	// ready is set once the config is loaded and every site's live
	// pointer has been read; notReady says what it is waiting for.
	ready    atomic.Bool
	notReady atomic.Pointer[string]
}

func newServer(ctx context.Context, cfg *config.Config, opts serverOptions) (_ *server, err error) {
	s := &server{cfg: cfg, log: opts.Logger, gcEvery: opts.GCInterval, getenv: opts.Getenv,
		configData: opts.ConfigData, configPoll: opts.ConfigPoll, configRepo: opts.ConfigRepo}
	s.current.Store(cfg)
	if s.gcEvery <= 0 {
		s.gcEvery = time.Hour
	}
	why := "reading the live pointers"
	s.notReady.Store(&why)
	if cfg.Server.AccessLogOn() {
		s.accessLog = s.log.With("component", "access")
	}
	reg := prometheus.NewRegistry()
	s.metrics = metrics.New(reg)
	s.journal = journal.New(journal.Options{OnFinish: s.recordAttempt})
	st, err := openStore(ctx, cfg, opts.Getenv, s.log.With("component", "store"))
	if err != nil {
		return nil, err
	}
	s.httpLn, err = net.Listen("tcp", cfg.Server.HTTP)
	if err != nil {
		return nil, fmt.Errorf("listening on server.http %s: %w", cfg.Server.HTTP, err)
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if cfg.Server.HTTPS != "" {
		s.httpsLn, err = net.Listen("tcp", cfg.Server.HTTPS)
		if err != nil {
			return nil, fmt.Errorf("listening on server.https %s: %w", cfg.Server.HTTPS, err)
		}
	}
	s.adminLn, err = net.Listen("tcp", cfg.Server.Admin)
	if err != nil {
		return nil, fmt.Errorf("listening on server.admin %s: %w", cfg.Server.Admin, err)
	}

	tmp := filepath.Join(cfg.Server.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("making scratch dir: %w", err)
	}
	// A flipped pointer drops the data plane's cached copy at once.
	s.publisher = publish.New(st, publish.Options{Logger: s.log.With("component", "publish"), Grace: opts.GCGrace, TempDir: tmp,
		OnChanged: func(n site.Name, c site.Channel) { s.data.Invalidate(n, c) }})
	s.blobs, err = newBlobCache(cfg, s.publisher, s.log.With("component", "cache"))
	if err != nil {
		return nil, err
	}
	s.data = serve.New(serve.Options{Sites: serveSites(cfg), PreviewDomain: cfg.Server.PreviewDomain, Reader: s.publisher, Blobs: s.blobs,
		Logger: s.log.With("component", "serve"), Observe: s.observe})
	s.metrics.WatchCache(func() metrics.CacheStats {
		st := s.blobs.Stats()
		return metrics.CacheStats{MemoryHits: uint64(st.MemoryHits), DiskHits: uint64(st.DiskHits), Misses: uint64(st.Misses)}
	})

	builder, err := build.New(build.Options{
		Exe: opts.Exe, Timeout: cfg.Server.Build.Timeout, Memory: int64(cfg.Server.Build.Memory),
		Logger: s.log.With("component", "build"),
	})
	if err != nil {
		return nil, err
	}
	if s.httpsLn != nil {
		if s.certs, err = s.newCerts(st, opts); err != nil {
			return nil, err
		}
	}
	specs := s.siteSettings(cfg)
	s.statuses, err = newStatusReporter(cfg, opts.Getenv, s.log.With("component", "forge"))
	if err != nil {
		return nil, err
	}
	s.notes = newNotifications(cfg, opts.Getenv, s.log.With("component", "notify"))
	s.loop, err = reconcile.New(reconcile.Options{
		Reporter: reporters{s.statuses, s.notes},
		Sites:    specs, DataDir: cfg.Server.DataDir, Builder: builder, Publisher: s.publisher, URL: s.channelURL,
		PollInterval: cfg.Server.PollInterval, Concurrency: cfg.Server.Build.Concurrency, SelfHeal: cfg.Server.SelfHeal,
		Journal: s.journal, Logger: s.log.With("component", "reconcile"),
	})
	if err != nil {
		return nil, err
	}
	s.metrics.WatchSites(s.channelStates)
	if s.certs != nil {
		s.metrics.WatchCertificates(s.certExpiries)
	}
	token := opts.Getenv(cfg.Server.APITokenEnv)
	if token == "" {
		s.log.Warn("admin API and generic webhook refuse every request: set the token", "env", cfg.Server.APITokenEnv)
	}
	var certStatus func(string) any
	if s.certs != nil {
		certStatus = func(d string) any { return s.certs.Status(d) }
	}
	adminLog := s.log.With("component", "admin")
	s.admin = accesslog.Handler("admin", admin.New(admin.Options{
		Token: token, SiteInfo: s.siteInfo, Loop: s.loop, Deploys: s.publisher, Journal: s.journal,
		Permalink: s.permalink, Logger: adminLog, Certificate: certStatus,
		Hooks: s.webhookHandlers(token, opts.Getenv), Ready: s.readiness, Metrics: s.metrics.Handler(),
	}), s.observeAdmin)
	if host, _, _ := net.SplitHostPort(s.adminLn.Addr().String()); !net.ParseIP(host).IsLoopback() {
		s.log.Warn("the admin listener is reachable from other machines: keep server.api_token_env's token secret and long, or bind server.admin to 127.0.0.1",
			"addr", s.adminLn.Addr().String())
	}
	return s, nil
}

// observe counts and logs one answer of the data plane.
func (s *server) observe(r *http.Request, e accesslog.Entry) {
	s.metrics.Request(e.Site, e.Status, e.Bytes)
	if s.accessLog != nil {
		e.Listener = "http"
		if r.TLS != nil {
			e.Listener = "https"
		}
		accesslog.Log(r.Context(), s.accessLog, e)
	}
}

// observeAdmin logs one answer of the admin listener; probes and scrapes
// only at debug level, they come every few seconds.
func (s *server) observeAdmin(r *http.Request, e accesslog.Entry) {
	if s.accessLog == nil {
		return
	}
	switch e.Path {
	case "/metrics", "/healthz", "/readyz":
		if !s.accessLog.Enabled(r.Context(), slog.LevelDebug) {
			return
		}
	}
	accesslog.Log(r.Context(), s.accessLog, e)
}

// recordAttempt feeds a finished deploy attempt to the metrics.
func (s *server) recordAttempt(a journal.Snapshot) {
	result := "failure"
	switch {
	case a.State == journal.Live && a.Reused:
		result = "reused"
	case a.State == journal.Live:
		result = "success"
	case a.State == journal.Superseded:
		result = "superseded"
	}
	m := metrics.Attempt{Site: string(a.Site), Result: result, Build: a.Timings.Build, BytesUploaded: a.BytesUploaded}
	if a.State == journal.Live {
		m.Publish = a.Timings.Upload + a.Timings.Publish
	}
	s.metrics.Deploy(m)
}

// channelStates is every channel's sync state, for the metrics.
func (s *server) channelStates() []metrics.SiteState {
	var out []metrics.SiteState
	for _, st := range s.loop.Status() {
		if _, ok := st.Channels[site.Production]; !ok && st.State != "" {
			out = append(out, metrics.SiteState{Site: string(st.Site), Channel: string(site.Production), State: string(st.State)})
		}
		for c, cs := range st.Channels {
			if cs.State != "" {
				out = append(out, metrics.SiteState{Site: string(st.Site), Channel: string(c), State: string(cs.State)})
			}
		}
	}
	return out
}

// certExpiries are the managed domains' certificate expiry times.
func (s *server) certExpiries() []metrics.Certificate {
	var out []metrics.Certificate
	for _, d := range s.managedDomains() {
		out = append(out, metrics.Certificate{Domain: d, NotAfter: s.certs.Status(d).NotAfter})
	}
	return out
}

// permalink is a deploy's immutable URL (DESIGN §5).
func (s *server) permalink(n site.Name, id site.DeployID) string {
	scheme, port := s.publicScheme()
	return baseURL(scheme, string(id)+"--"+string(n)+"."+s.cfg.Server.PreviewDomain, port)
}

// publicScheme is how sites are reached: HTTPS when it is on.
func (s *server) publicScheme() (scheme, port string) {
	if s.httpsLn != nil {
		return "https", portOf(s.httpsLn.Addr())
	}
	return "http", portOf(s.httpLn.Addr())
}

// readiness is nil once the server can serve: config loaded, and every
// site's live pointer read (warm) once.
func (s *server) readiness() error {
	if s.ready.Load() {
		return nil
	}
	return errors.New(*s.notReady.Load())
}

// warm reads the live pointers until it can, then marks the server ready.
func (s *server) warm(ctx context.Context) {
	for {
		err := s.data.Warm(ctx)
		if err == nil {
			s.ready.Store(true)
			s.log.Info("ready: every site's live pointer is read")
			return
		}
		// /readyz needs no token: the reason names no internals; the log does.
		why := "waiting for storage: the live pointers cannot be read yet (see the server log)"
		s.notReady.Store(&why)
		s.log.Warn("not ready yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// openStore opens the object store of server.storage.
func openStore(ctx context.Context, cfg *config.Config, getenv func(string) string, logger *slog.Logger) (store.Store, error) {
	sc := cfg.Server.Storage
	switch sc.Kind {
	case "s3":
		ak, sk := getenv(sc.S3.AccessKeyEnv), getenv(sc.S3.SecretKeyEnv)
		for name, v := range map[string]string{sc.S3.AccessKeyEnv: ak, sc.S3.SecretKeyEnv: sk} {
			if v == "" {
				return nil, fmt.Errorf("opening s3 store: environment variable %s (server.storage.s3) is not set", name)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := s3store.New(ctx, s3store.Options{
			Endpoint: sc.S3.Endpoint, Bucket: sc.S3.Bucket, Region: sc.S3.Region,
			AccessKey: ak, SecretKey: sk, TLS: sc.S3.TLS, Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("opening s3 store: %w", err)
		}
		return st, nil
	default:
		st, err := fsstore.New(sc.Path)
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		return st, nil
	}
}

// newBlobCache puts the data plane's cache in front of the store: memory
// for small hot blobs, and for s3 a disk tier under data_dir, so sites keep
// serving while the bucket is unreachable. An fs store is a local disk
// already.
func newBlobCache(cfg *config.Config, src blobcache.Source, logger *slog.Logger) (*blobcache.Cache, error) {
	c := cfg.Server.Cache
	opts := blobcache.Options{Source: src, MemoryBytes: int64(c.Memory), Logger: logger}
	if c.Memory == 0 {
		opts.MemoryBytes = -1
	}
	if cfg.Server.Storage.Kind == "s3" && c.Disk > 0 {
		opts.Dir = filepath.Join(cfg.Server.DataDir, "cache", "blobs")
		opts.DiskBytes = int64(c.Disk)
	}
	bc, err := blobcache.New(opts)
	if err != nil {
		return nil, fmt.Errorf("opening blob cache: %w", err)
	}
	return bc, nil
}

// gcLoop collects garbage every interval, starting a little after start-up
// so a restart loop does not hammer the store. Several replicas on one
// bucket may all run it: collections are safe against each other.
func (s *server) gcLoop(ctx context.Context) {
	first := time.Duration(rand.Int64N(int64(min(s.gcEvery, 5*time.Minute)))) + time.Second
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		opts := publish.GCOptions{Retention: s.cfg.Server.Retention}
		for _, sc := range s.current.Load().Sites {
			opts.SkewDeploys = max(opts.SkewDeploys, sc.Skew.Deploys)
			opts.SkewGrace = max(opts.SkewGrace, sc.Skew.Grace)
		}
		if _, err := s.publisher.GC(ctx, opts); err != nil && ctx.Err() == nil {
			s.log.Error("garbage collection failed; retrying at the next interval", "err", err)
		}
		// Jitter spreads the replicas' collections apart.
		t.Reset(s.gcEvery + time.Duration(rand.Int64N(int64(s.gcEvery/10)+1)))
	}
}

// baseURL is a site's public URL: its host on our HTTP or HTTPS port, or
// "/" (relative links) for a site without domains.
func baseURL(scheme, domain, port string) string {
	if domain == "" {
		return "/"
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + domain + "/"
	}
	return scheme + "://" + net.JoinHostPort(domain, port) + "/"
}

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

// managedDomains are the hosts whose certificates are obtained up front:
// every production domain and the control host.
func (s *server) managedDomains() []string {
	var out []string
	for _, sc := range s.current.Load().Sites {
		out = append(out, sc.Domains...)
	}
	if s.cfg.Server.ControlHost != "" {
		out = append(out, s.cfg.Server.ControlHost)
	}
	return out
}

// onDemand vouches for preview, branch and permalink hosts that name an
// existing channel or deploy of a configured site; every other host is
// refused, so no one can make sitehost order certificates for names it
// does not serve.
func (s *server) onDemand(ctx context.Context, host string) error {
	t, ok := preview.ParseHost(host, s.cfg.Server.PreviewDomain)
	if _, known := s.current.Load().Site(t.Site); !ok || !known {
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
	if errors.Is(err, publish.ErrNotFound) {
		return errors.New("no such preview or deploy")
	}
	return err
}

func portOf(a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}

func (s *server) close() {
	for _, ln := range []net.Listener{s.httpLn, s.httpsLn, s.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// run serves until ctx ends, then shuts down gracefully.
func (s *server) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	type listener struct {
		name string
		ln   net.Listener
		srv  *http.Server
	}
	servers := []listener{
		{"http", s.httpLn, newHTTPServer(s.public(), s.log)},
		{"admin", s.adminLn, newHTTPServer(s.admin, s.log)},
	}
	if s.certs != nil {
		servers[0].srv.Handler = recoverPanics(s.certs.HTTPChallengeHandler(http.HandlerFunc(s.redirectHTTPS)), s.log)
		tlsSrv := newHTTPServer(hsts(s.public()), s.log)
		tlsSrv.TLSConfig = s.certs.TLSConfig()
		servers = append(servers, listener{"https", s.httpsLn, tlsSrv})
		if err := s.certs.Manage(ctx, s.managedDomains()); err != nil {
			return err
		}
		defer s.certs.Stop()
	}
	for _, x := range servers {
		s.log.Info("listening", "listener", x.name, "addr", x.ln.Addr().String())
		g.Go(func() error {
			var err error
			if x.srv.TLSConfig != nil {
				err = x.srv.ServeTLS(x.ln, "", "") // certificates come from TLSConfig
			} else {
				err = x.srv.Serve(x.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving %s: %w", x.name, err)
			}
			return nil
		})
	}
	g.Go(func() error { s.warm(ctx); return nil })
	g.Go(func() error { return s.loop.Run(ctx) })
	switch {
	case s.configRepo != nil:
		g.Go(func() error {
			s.configRepo.follow(ctx, s.configPoll, func(data []byte) { s.reloadFile(ctx, s.cfg.File, data) }) //nolint:errcheck // logged
			return nil
		})
	case s.configData != nil:
		g.Go(func() error {
			return watch.Run(ctx, watch.Options{Path: s.cfg.File, Poll: s.configPoll, MaxSize: config.MaxFileSize, Logger: s.log},
				s.configData, func(data []byte) { s.reloadFile(ctx, s.cfg.File, data) }) //nolint:errcheck // logged
		})
	}
	g.Go(func() error { s.statuses.reporter.Run(ctx); return nil })
	g.Go(func() error { s.gcLoop(ctx); return nil })
	g.Go(func() error {
		<-ctx.Done()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.notes.close(cctx)
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, x := range servers {
			x.srv.Shutdown(sctx) //nolint:errcheck // best effort on the way out
		}
		return nil
	})
	return g.Wait()
}

// public is the handler of the public listener: the sites, and the admin
// handler on control_host, so forges can reach the webhooks from outside.
func (s *server) public() http.Handler {
	control := strings.ToLower(s.cfg.Server.ControlHost)
	if control == "" {
		return s.data
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestHost(r) == control {
			// Metrics need no token: they stay on the admin listener,
			// which is loopback unless said otherwise.
			if r.URL.Path == "/metrics" {
				http.Error(w, "404 not found: /metrics is served on the admin listener only", http.StatusNotFound)
				return
			}
			s.admin.ServeHTTP(w, r)
			return
		}
		s.data.ServeHTTP(w, r)
	})
}

// requestHost is r's host without port or trailing dot, lowercased.
func requestHost(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(host, ".")
}

// redirectHTTPS is the plain HTTP listener once HTTPS is on: ACME
// challenges are answered before this; a host sitehost serves is sent to
// HTTPS with 308 (method and body kept); any other host gets 404.
func (s *server) redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := requestHost(r)
	if !s.data.Serves(host) && host != s.cfg.Server.ControlHost {
		http.Error(w, "404 not found: no site is served at "+host, http.StatusNotFound)
		return
	}
	target := host
	if port := portOf(s.httpsLn.Addr()); port != "443" {
		target = net.JoinHostPort(host, port)
	}
	http.Redirect(w, r, "https://"+target+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// hsts tells browsers to use HTTPS only: every response on the HTTPS
// listener comes after a handshake with a valid certificate for its host.
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           recoverPanics(h, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      10 * time.Minute, // large files on slow links
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// recoverPanics turns a panic in a handler into a 500 and a log line.
func recoverPanics(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.Error("panic serving request", "host", r.Host, "path", r.URL.Path, "panic", fmt.Sprint(v))
				http.Error(w, "500 internal server error", http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// serveSites is what the data plane needs of each site.
func serveSites(cfg *config.Config) []serve.Site {
	var out []serve.Site
	for _, sc := range cfg.Sites {
		out = append(out, serve.Site{
			Name: sc.Name, Domains: sc.Domains,
			Rules: serve.RuleOptions{
				Proxy: sc.Rules.Proxy, ProxyPrivate: sc.Rules.ProxyPrivate, ProxyTimeout: sc.Rules.ProxyTimeout,
				ProxyMaxBytes: int64(sc.Rules.ProxyMaxBytes), CountryHeader: sc.Rules.CountryHeader,
			},
			Skew: serve.SkewOptions{Deploys: sc.Skew.Deploys, Grace: sc.Skew.Grace},
		})
	}
	return out
}

// siteSettings records cfg's per-site lookups (primary domains, admin
// info, webhook routing) and returns the control loop's specs.
func (s *server) siteSettings(cfg *config.Config) []reconcile.Spec {
	primary := map[site.Name]string{}
	for _, sc := range cfg.Sites {
		primary[sc.Name] = sc.PrimaryDomain()
	}
	s.primary.Store(&primary)
	var specs []reconcile.Spec
	infos := map[site.Name]admin.SiteInfo{}
	for _, sc := range cfg.Sites {
		url := s.channelURL(sc.Name, site.Production)
		secrets := map[string]string{}
		for _, name := range sc.Build.SecretEnv {
			v := s.getenv(name)
			if v == "" {
				s.log.Warn("secret_env is not set in sitehost's environment", "site", sc.Name, "name", name)
			}
			secrets[name] = v
		}
		cr := sc.Credentials
		creds := gitsrc.Credentials{Username: cr.Username, SSHKeyFile: cr.SSHKeyFile}
		if cr.PasswordEnv != "" {
			if creds.Password = s.getenv(cr.PasswordEnv); creds.Password == "" {
				s.log.Warn("credentials.password_env is not set in sitehost's environment", "site", sc.Name, "name", cr.PasswordEnv)
			}
		}
		if cr.SSHKeyPassphraseEnv != "" {
			creds.SSHKeyPassphrase = s.getenv(cr.SSHKeyPassphraseEnv)
		}
		specs = append(specs, reconcile.Spec{
			Name: sc.Name, Repo: gitsrc.Options{URL: sc.Repo, Credentials: creds}, Ref: sc.Ref, Path: sc.Path, Pin: sc.Pin,
			Branches:    sc.Branches,
			Previews:    reconcile.Previews{Enabled: sc.Previews.On(), TTL: sc.Previews.TTL, Forks: sc.Previews.Forks},
			Build:       build.Settings{Tool: sc.Build.Tool, Environment: sc.Build.Environment, Minify: sc.Build.MinifyOn(), Env: sc.Build.Env, SecretEnv: secrets},
			StrictRules: sc.Rules.Strict, Proxy: sc.Rules.Proxy, WriteBack: sc.WriteBack,
		})
		infos[sc.Name] = admin.SiteInfo{Name: sc.Name, Repo: sc.Repo, Ref: sc.Ref, Domains: sc.Domains, URL: url}
	}
	s.infos.Store(&infos)
	repos := newRepoSites(cfg, s.getenv, s.log)
	s.repos.Store(&repos)
	return specs
}

func (s *server) siteInfo(n site.Name) (admin.SiteInfo, bool) {
	info, ok := (*s.infos.Load())[n]
	return info, ok
}

// channelURL is a channel's public URL: its build's base URL.
func (s *server) channelURL(n site.Name, c site.Channel) string {
	scheme, port := s.publicScheme()
	if c == site.Production {
		return baseURL(scheme, (*s.primary.Load())[n], port)
	}
	return baseURL(scheme, preview.ChannelHost(c, n, s.cfg.Server.PreviewDomain), port)
}

// reload applies a new, valid config while running: sites start, stop and
// change, domains are rerouted and get certificates; the other sites are
// not touched. Server settings need a restart: they keep their running
// values, and a change to them is logged.
func (s *server) reload(ctx context.Context, cfg *config.Config) error {
	if changed := serverChanges(s.cfg, cfg); len(changed) > 0 {
		s.log.Warn("config reloaded, but these server settings only change on restart", "keys", changed)
	}
	for _, old := range s.current.Load().Sites {
		if _, kept := cfg.Site(old.Name); !kept {
			s.journal.Forget(old.Name)
		}
	}
	specs := s.siteSettings(cfg)
	if err := s.statuses.setSites(cfg, s.getenv); err != nil {
		return err
	}
	s.data.SetSites(serveSites(cfg))
	s.notes.setSites(cfg)
	s.current.Store(cfg)
	if err := s.loop.Update(specs); err != nil {
		return err
	}
	if s.certs != nil {
		if err := s.certs.Manage(ctx, s.managedDomains()); err != nil {
			return err
		}
	}
	s.log.Info("config reloaded", "sites", len(cfg.Sites))
	return nil
}

// serverChanges names the server settings that differ between a and b.
func serverChanges(a, b *config.Config) []string {
	var out []string
	av, bv := reflect.ValueOf(a.Server), reflect.ValueOf(b.Server)
	for i := range av.NumField() {
		if !reflect.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			out = append(out, "server."+strings.Split(av.Type().Field(i).Tag.Get("yaml"), ",")[0])
		}
	}
	return out
}

// reloadFile parses a new version of the config file and applies it. An
// invalid one is rejected with every problem logged; the running config
// stays.
func (s *server) reloadFile(ctx context.Context, path string, data []byte) error {
	cfg, err := config.Parse(path, data)
	if err != nil {
		probs := config.Problems(err)
		for _, p := range probs {
			s.log.Error("config rejected", "problem", p.Error())
		}
		if len(probs) == 0 {
			s.log.Error("config rejected", "err", err)
		}
		s.log.Error("config reload refused: the running config stays", "file", path, "problems", max(len(probs), 1))
		return fmt.Errorf("reloading %s: %w", path, err)
	}
	return s.reload(ctx, cfg)
}
