package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/blobcache"
	"github.com/sitehost/sitehost/internal/build"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/preview"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
	"github.com/sitehost/sitehost/internal/store/s3store"
)

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("c", "sites.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return exitError{err}
	}
	cfg, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, getenv)
	srv, err := newServer(ctx, cfg, serverOptions{Getenv: getenv, Logger: logger})
	if err != nil {
		return err
	}
	return srv.run(ctx)
}

// loadConfig loads and validates, printing every problem.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path)
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
}

// server is sitehost with everything wired: listeners bound, loop ready.
type server struct {
	cfg       *config.Config
	log       *slog.Logger
	httpLn    net.Listener
	adminLn   net.Listener
	loop      *reconcile.Loop
	publisher *publish.Publisher
	data      *serve.Handler
	admin     http.Handler
	urls      map[site.Name]string
	statuses  *statusReporter
	blobs     *blobcache.Cache
	gcEvery   time.Duration
}

func newServer(ctx context.Context, cfg *config.Config, opts serverOptions) (_ *server, err error) {
	s := &server{cfg: cfg, log: opts.Logger, urls: map[site.Name]string{}, gcEvery: opts.GCInterval}
	if s.gcEvery <= 0 {
		s.gcEvery = time.Hour
	}
	st, err := openStore(ctx, cfg, opts.Getenv, s.log.With("component", "store"))
	if err != nil {
		return nil, err
	}
	if cfg.Server.HTTPS != "" {
		return nil, errors.New("server.https is not supported yet: leave it empty")
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
	s.adminLn, err = net.Listen("tcp", cfg.Server.Admin)
	if err != nil {
		return nil, fmt.Errorf("listening on server.admin %s: %w", cfg.Server.Admin, err)
	}

	var sites []serve.Site
	for _, sc := range cfg.Sites {
		sites = append(sites, serve.Site{Name: sc.Name, Domains: sc.Domains})
	}
	// A flipped pointer drops the data plane's cached copy at once.
	s.publisher = publish.New(st, publish.Options{Logger: s.log.With("component", "publish"), Grace: opts.GCGrace,
		OnChanged: func(n site.Name, c site.Channel) { s.data.Invalidate(n, c) }})
	s.blobs, err = newBlobCache(cfg, s.publisher, s.log.With("component", "cache"))
	if err != nil {
		return nil, err
	}
	s.data = serve.New(serve.Options{Sites: sites, PreviewDomain: cfg.Server.PreviewDomain, Reader: s.publisher, Blobs: s.blobs, Logger: s.log.With("component", "serve")})

	builder, err := build.New(build.Options{
		Exe: opts.Exe, Timeout: cfg.Server.Build.Timeout, Memory: int64(cfg.Server.Build.Memory),
		Logger: s.log.With("component", "build"),
	})
	if err != nil {
		return nil, err
	}
	httpPort := portOf(s.httpLn.Addr())
	primary := map[site.Name]string{}
	for _, sc := range cfg.Sites {
		primary[sc.Name] = sc.PrimaryDomain()
	}
	channelURL := func(n site.Name, c site.Channel) string {
		if c == site.Production {
			return baseURL(primary[n], httpPort)
		}
		return baseURL(preview.ChannelHost(c, n, cfg.Server.PreviewDomain), httpPort)
	}
	var specs []reconcile.Spec
	var infos []admin.SiteInfo
	for _, sc := range cfg.Sites {
		url := channelURL(sc.Name, site.Production)
		s.urls[sc.Name] = url
		secrets := map[string]string{}
		for _, name := range sc.Build.SecretEnv {
			v := opts.Getenv(name)
			if v == "" {
				s.log.Warn("secret_env is not set in sitehost's environment", "site", sc.Name, "name", name)
			}
			secrets[name] = v
		}
		specs = append(specs, reconcile.Spec{
			Name: sc.Name, Repo: gitsrc.Options{URL: sc.Repo}, Ref: sc.Ref, Path: sc.Path, Pin: sc.Pin,
			Branches: sc.Branches,
			Previews: reconcile.Previews{Enabled: sc.Previews.On(), TTL: sc.Previews.TTL, Forks: sc.Previews.Forks},
			Build:    build.Settings{Tool: sc.Build.Tool, Environment: sc.Build.Environment, Minify: sc.Build.MinifyOn(), Env: sc.Build.Env, SecretEnv: secrets},
		})
		infos = append(infos, admin.SiteInfo{Name: sc.Name, Repo: sc.Repo, Ref: sc.Ref, Domains: sc.Domains, URL: url})
	}
	s.statuses, err = newStatusReporter(cfg, opts.Getenv, s.log.With("component", "forge"))
	if err != nil {
		return nil, err
	}
	s.loop, err = reconcile.New(reconcile.Options{
		Reporter: s.statuses,
		Sites:    specs, DataDir: cfg.Server.DataDir, Builder: builder, Publisher: s.publisher, URL: channelURL,
		PollInterval: cfg.Server.PollInterval, Concurrency: cfg.Server.Build.Concurrency,
		Logger: s.log.With("component", "reconcile"),
	})
	if err != nil {
		return nil, err
	}
	token := opts.Getenv(cfg.Server.APITokenEnv)
	if token == "" {
		s.log.Warn("admin API and generic webhook refuse every request: set the token", "env", cfg.Server.APITokenEnv)
	}
	s.admin = admin.New(admin.Options{
		Token: token, Sites: infos, PreviewDomain: cfg.Server.PreviewDomain,
		Loop: s.loop, Deploys: s.publisher, Logger: s.log.With("component", "admin"),
		Hooks: s.webhookHandlers(token, opts.Getenv),
	})
	return s, nil
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
		if _, err := s.publisher.GC(ctx, publish.GCOptions{Retention: s.cfg.Server.Retention}); err != nil && ctx.Err() == nil {
			s.log.Error("garbage collection failed; retrying at the next interval", "err", err)
		}
		// Jitter spreads the replicas' collections apart.
		t.Reset(s.gcEvery + time.Duration(rand.Int64N(int64(s.gcEvery/10)+1)))
	}
}

// baseURL is a site's production URL: its primary domain on our HTTP port,
// or "/" (relative links) for a site without domains.
func baseURL(domain, port string) string {
	if domain == "" {
		return "/"
	}
	if port == "" || port == "80" {
		return "http://" + domain + "/"
	}
	return "http://" + net.JoinHostPort(domain, port) + "/"
}

func portOf(a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}

func (s *server) close() {
	for _, ln := range []net.Listener{s.httpLn, s.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// run serves until ctx ends, then shuts down gracefully.
func (s *server) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	servers := []struct {
		name string
		ln   net.Listener
		srv  *http.Server
	}{
		{"http", s.httpLn, newHTTPServer(s.public(), s.log)},
		{"admin", s.adminLn, newHTTPServer(s.admin, s.log)},
	}
	for _, x := range servers {
		s.log.Info("listening", "listener", x.name, "addr", x.ln.Addr().String())
		g.Go(func() error {
			if err := x.srv.Serve(x.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving %s: %w", x.name, err)
			}
			return nil
		})
	}
	g.Go(func() error { return s.loop.Run(ctx) })
	g.Go(func() error { s.statuses.reporter.Run(ctx); return nil })
	g.Go(func() error { s.gcLoop(ctx); return nil })
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
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.TrimSuffix(host, ".") == control {
			s.admin.ServeHTTP(w, r)
			return
		}
		s.data.ServeHTTP(w, r)
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
