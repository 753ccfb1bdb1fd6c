package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/bearer"
	"github.com/sitehost/sitehost/internal/blobcache"
	"github.com/sitehost/sitehost/internal/certs"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/forge"
	"github.com/sitehost/sitehost/internal/gitsrc"
	"github.com/sitehost/sitehost/internal/hugomod"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/lease"
	"github.com/sitehost/sitehost/internal/metrics"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/serve"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/tempdir"
	"github.com/sitehost/sitehost/internal/watch"
)

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
	// Version names the config the server starts with (default: the
	// sha256 of ConfigData, or of nothing).
	Version configVersion
	// failStep, in tests, fails the named apply step with its error.
	failStep func(step string) error
	// Role is serve --role: it overrides server.role, at start and on
	// every reload.
	Role string
}

// server is sitehost with everything wired: listeners bound, loop ready.
// What lives as long as the process (listeners, store, caches, the
// control loop, certificates) is here; what depends on the config is in
// the runtime rt, which a reload replaces whole (apply.go).
type server struct {
	// cfg is the config the server started with: its server settings hold
	// until a restart. The sites served are rt's.
	cfg         *config.Config
	rt          atomic.Pointer[configRuntime]
	applying    sync.Mutex // one apply at a time
	configState configState
	failStep    func(step string) error

	getenv     func(string) string
	roleFlag   string // serve --role; "" uses server.role
	configData []byte // the watched config file as loaded; nil: not watched
	configPoll time.Duration
	configRepo *configRepo // serve --config-repo
	log        *slog.Logger
	accessLog  *slog.Logger // nil: requests are not logged

	httpLn  net.Listener
	httpsLn net.Listener // nil without server.https
	adminLn net.Listener

	loop      *reconcile.Loop
	store     store.Store
	publisher *publish.Publisher
	data      *serve.Handler
	admin     http.Handler
	forge     *forge.Reporter
	blobs     *blobcache.Cache
	gcEvery   time.Duration
	certs     *certs.Manager // nil without server.https
	scratch   *tempdir.Dir   // the builds' scratch folders; swept at the next start if not released
	metrics   *metrics.Metrics
	journal   *journal.Journal
	leases    *lease.Manager // nil: no leases (server.lease_time unset)
	// ownerStatus shares the statuses of the sites this builder holds
	// (nil: no other replica shows them).
	ownerStatus *ownerStatus

	// ready is set once the config is loaded and every site's live
	// pointer has been read; notReady says what it is waiting for.
	ready    atomic.Bool
	notReady atomic.Pointer[string]
	// draining is set on SIGTERM: /readyz fails from then on.
	draining atomic.Bool
	// streams ends when the listeners start draining, so that SSE
	// streams, which would outlive any drain, end first.
	streams    context.Context
	endStreams context.CancelFunc
}

// newServer binds the listeners, opens the store and applies cfg as a
// reload would: the same steps, so a config that starts is a config that
// reloads.
func newServer(ctx context.Context, cfg *config.Config, opts serverOptions) (_ *server, err error) {
	s := &server{cfg: cfg, log: opts.Logger, gcEvery: opts.GCInterval, getenv: opts.Getenv,
		configData: opts.ConfigData, configPoll: opts.ConfigPoll, configRepo: opts.ConfigRepo, failStep: opts.failStep,
		roleFlag: opts.Role}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	s.withRole(cfg)
	s.log.Info("role", "role", cfg.Server.Role)
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
	s.store = st
	if err := s.listen(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	tmp := filepath.Join(cfg.Server.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("making scratch dir: %w", err)
	}
	s.leases = s.newLeases(st)
	fence, owner := s.fence()
	// A flipped pointer drops the data plane's cached copy at once.
	s.publisher = publish.New(st, publish.Options{Logger: s.log.With("component", "publish"), Grace: opts.GCGrace, TempDir: tmp,
		OnChanged: func(n site.Name, c site.Channel) { s.data.Invalidate(n, c) }, Fence: fence})
	s.blobs, err = newBlobCache(cfg, s.publisher, s.log.With("component", "cache"))
	if err != nil {
		return nil, err
	}
	s.data = serve.New(serve.Options{Reader: s.publisher, Blobs: s.blobs,
		Logger: s.log.With("component", "serve"), Observe: s.observe,
		Write: serve.WriteLimits{Timeout: cfg.Server.Limits.WriteTimeout, MinRate: int64(cfg.Server.Limits.WriteMinRate)}})
	s.metrics.WatchCache(func() metrics.CacheStats {
		st := s.blobs.Stats()
		return metrics.CacheStats{MemoryHits: uint64(st.MemoryHits), DiskHits: uint64(st.DiskHits), Misses: uint64(st.Misses)}
	})

	buildLog := s.log.With("component", "build")
	if s.scratch, err = claimScratch(buildLog); err != nil {
		return nil, err
	}
	// Once: server.build settings change on restart only.
	builder, npmInstaller, err := newBuilder(ctx, cfg.Server.Build, opts.Exe,
		filepath.Join(cfg.Server.DataDir, "hugo"), filepath.Join(cfg.Server.DataDir, "cache", "npm"), s.scratch.Path(), opts.Getenv, buildLog)
	if err != nil {
		return nil, err
	}
	// Before any build: the cgroups of builds a killed server left.
	builder.Sandbox().Sweep(buildLog)
	if s.httpsLn != nil {
		if s.certs, err = s.newCerts(st, opts); err != nil {
			return nil, err
		}
	}
	s.forge = forge.NewReporter(s.log, forge.ReporterOptions{})
	reps := reporters{statusReporter{s.forge, s.rt.Load}, notifications{s.rt.Load}}
	if cfg.Server.Role == config.RoleBuilder || s.leases != nil {
		// Other replicas show these sites: they read what the owner knows.
		s.ownerStatus = newOwnerStatus(s)
		reps = append(reps, s.ownerStatus)
	}
	s.loop, err = reconcile.New(reconcile.Options{
		Reporter: reps,
		DataDir:  cfg.Server.DataDir, Builder: builder, Publisher: s.publisher, URL: s.channelURL,
		PollInterval: cfg.Server.PollInterval, Concurrency: cfg.Server.Build.Concurrency, SelfHeal: cfg.Server.SelfHeal,
		Journal: s.journal, Logger: s.log.With("component", "reconcile"),
		Modules:   hugomod.Options{Proxies: cfg.Server.Build.GoProxy},
		NPM:       npmInstaller,
		Toolchain: builder.Toolchain(),
		Owner:     owner,
	})
	if err != nil {
		return nil, err
	}
	v := opts.Version
	if v.id == "" {
		v = fileVersion(cfg.File, opts.ConfigData)
	}
	if err := s.apply(ctx, cfg, v); err != nil {
		return nil, err
	}
	if cfg.Server.Builds() {
		// Sync states are the builder's to know; an edge would say
		// OutOfSync for every site.
		s.metrics.WatchSites(s.channelStates)
	}
	if s.certs != nil {
		s.metrics.WatchCertificates(s.certExpiries)
	}
	adm := s.adminHandler(opts.Getenv(cfg.Server.APITokenEnv))
	s.warnWideAdmin(adm)
	s.admin = adm
	return s, nil
}

// withRole makes serve --role win over cfg's server.role.
func (s *server) withRole(cfg *config.Config) {
	if s.roleFlag != "" {
		cfg.Server.Role = s.roleFlag
	}
}

// listen binds the listeners of the server settings: a builder has no
// data plane, so only the admin one. The public ones (http, https) share
// server.limits' connection counts.
func (s *server) listen() (err error) {
	sc := s.cfg.Server
	if !sc.Serves() {
		if s.adminLn, err = net.Listen("tcp", sc.Admin); err != nil {
			return fmt.Errorf("listening on server.admin %s: %w", sc.Admin, err)
		}
		return nil
	}
	var lim *serve.ConnLimiter
	refused := s.metrics.WatchConnections(func() int { return lim.Open() })
	lim = serve.NewConnLimiter(serve.ConnLimits{PerIP: sc.Limits.ConnsPerIP, Total: sc.Limits.Conns, Refused: refused})
	if s.httpLn, err = net.Listen("tcp", sc.HTTP); err != nil {
		return fmt.Errorf("listening on server.http %s: %w", sc.HTTP, err)
	}
	s.httpLn = lim.Listener(s.httpLn)
	if sc.HTTPS != "" {
		if s.httpsLn, err = net.Listen("tcp", sc.HTTPS); err != nil {
			s.close()
			return fmt.Errorf("listening on server.https %s: %w", sc.HTTPS, err)
		}
		s.httpsLn = lim.Listener(s.httpsLn)
	}
	if s.adminLn, err = net.Listen("tcp", sc.Admin); err != nil {
		s.close()
		return fmt.Errorf("listening on server.admin %s: %w", sc.Admin, err)
	}
	return nil
}

// warnWideAdmin warns when the admin listener is reachable from other
// machines, naming every path that then is, from the handler's own
// routes: the open ones (/metrics among them) answer anyone.
func (s *server) warnWideAdmin(h *admin.Handler) {
	if host, _, _ := net.SplitHostPort(s.adminLn.Addr().String()); net.ParseIP(host).IsLoopback() {
		return
	}
	paths := map[admin.Access][]string{}
	for _, r := range h.Routes() {
		paths[r.Access] = append(paths[r.Access], r.String())
	}
	s.log.Warn("the admin listener is reachable from other machines: its open paths, /metrics among them, answer anyone; "+
		"keep server.api_token_env's token secret, or bind server.admin to 127.0.0.1",
		"addr", s.adminLn.Addr().String(),
		"open", strings.Join(paths[admin.Open], ", "),
		"with_token", strings.Join(paths[admin.Token], ", "),
		"webhooks", strings.Join(paths[admin.Webhook], ", "))
}

// adminHandler is the admin API, dashboard, webhooks and probes, reading
// the sites of the live runtime.
func (s *server) adminHandler(token string) *admin.Handler {
	if token == "" {
		s.log.Warn("admin API and generic webhook refuse every request: set the token", "env", s.cfg.Server.APITokenEnv)
	}
	var certStatus func(string) any
	if s.certs != nil {
		certStatus = func(d string) any { return s.certs.Status(d) }
	}
	// One guard for the API, the dashboard and the generic webhook: a
	// client's wrong tokens count the same wherever it sends them.
	guard := bearer.New(bearer.Options{Token: token, OnFailure: s.metrics.AdminAuthFailure})
	var loop admin.Loop = s.loop
	switch {
	case !s.cfg.Server.Builds():
		loop = bucketStatus{s}
	case s.leases != nil:
		loop = leasedStatus{s}
	}
	return admin.New(admin.Options{
		Token: token, Guard: guard, SiteInfo: s.siteInfo, List: s.siteList, Config: s.configStatus,
		Loop: loop, Deploys: s.publisher, Journal: s.journal,
		Permalink: s.permalink, Logger: s.log, Certificate: certStatus,
		Hooks: s.webhookHandlers(guard), Ready: s.readiness, Metrics: s.metrics.Handler(),
	})
}

func (s *server) siteInfo(n site.Name) (admin.SiteInfo, bool) {
	info, ok := s.rt.Load().infos[n]
	return info, ok
}

// siteList is every site of the live config, in its order.
func (s *server) siteList() []admin.SiteInfo {
	rt := s.rt.Load()
	out := make([]admin.SiteInfo, 0, len(rt.cfg.Sites))
	for _, sc := range rt.cfg.Sites {
		out = append(out, rt.infos[sc.Name])
	}
	return out
}

func (s *server) configStatus() api.Config { return s.configState.get() }

// compileEnv is what compile needs of this server.
func (s *server) compileEnv() compileEnv {
	return compileEnv{
		getenv: s.getenv, log: s.log, https: s.cfg.Server.HTTPS != "",
		controlHost: s.cfg.Server.ControlHost, previewDomain: s.cfg.Server.PreviewDomain,
		url: func(primary map[site.Name]string, n site.Name) string {
			scheme, port := s.publicScheme()
			return baseURL(scheme, primary[n], port)
		},
	}
}

// readiness is nil once the server can serve: config loaded, and every
// site's live pointer read (warm) once.
func (s *server) readiness() error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
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

func (s *server) close() {
	for _, ln := range []net.Listener{s.httpLn, s.httpsLn, s.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if s.scratch != nil {
		s.scratch.Release() //nolint:errcheck // what is left, the next start sweeps
	}
}

// run serves until ctx ends, then shuts down gracefully: the control work
// (builds, polls, GC) stops at once, abandoning builds before their pointer
// flips, while the listeners serve on for server.shutdown_delay with
// /readyz failing, then drain (shutdown).
func (s *server) run(ctx context.Context) error {
	sig := ctx
	// The listeners live on the group's ctx, which only a failure ends;
	// everything else on ctx, which the signal ends too.
	g, gctx := errgroup.WithContext(context.WithoutCancel(sig))
	ctx, cancel := context.WithCancel(gctx)
	defer cancel()
	stop := context.AfterFunc(sig, cancel)
	defer stop()
	sc := s.cfg.Server
	servers := s.listeners()
	if s.certs != nil {
		defer s.certs.Stop()
	}
	// Builds have ended when g.Wait returns (the loop waits for them).
	defer s.scratch.Release() //nolint:errcheck // what is left, the next start sweeps
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
	if sc.Builds() {
		g.Go(func() error { return s.loop.Run(ctx) })
		if sc.Role == config.RoleBuilder || s.leases != nil {
			// Markers of webhooks and syncs that reached an edge or
			// another builder. Not for role all alone on its bucket: a
			// List a second is a cost.
			g.Go(func() error { s.loop.WatchRequests(ctx, s.store, time.Second); return nil })
		}
		if s.leases != nil {
			g.Go(func() error { s.runLeases(ctx); return nil })
		}
		if s.ownerStatus != nil {
			g.Go(func() error { s.ownerStatus.run(ctx); return nil })
		}
		g.Go(func() error { s.forge.Run(ctx); return nil })
		g.Go(func() error { s.gcLoop(ctx); return nil })
	}
	switch {
	case s.configRepo != nil:
		g.Go(func() error {
			s.configRepo.follow(ctx, s.configPoll, func(v configVersion, data []byte) error {
				return s.reloadVersion(ctx, s.cfg.File, data, v)
			}, func() gitsrc.Rewrites { return s.rt.Load().rewrites })
			return nil
		})
	case s.configData != nil:
		g.Go(func() error {
			return watch.Run(ctx, watch.Options{Path: s.cfg.File, Poll: s.configPoll, MaxSize: config.MaxFileSize, Logger: s.log,
				// The API tells a file that cannot be read, as it tells one
				// that was refused.
				OnError: func(err error) {
					v := configVersion{source: "file", path: s.cfg.File, id: "unreadable"}
					s.configState.refused(v, "read", err, nil, time.Now())
				}},
				s.configData, func(data []byte) {
					s.reloadFile(ctx, s.cfg.File, data) //nolint:errcheck // refuse logged it and the API shows it
				})
		})
	}
	g.Go(func() error {
		<-ctx.Done()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.rt.Load().notifier.Close(cctx) //nolint:errcheck // logged by the notifier
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		s.shutdown(gctx.Done(), servers)
		return nil
	})
	return g.Wait()
}
