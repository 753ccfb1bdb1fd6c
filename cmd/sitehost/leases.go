package main

import (
	"context"

	"github.com/sitehost/sitehost/internal/lease"
	"github.com/sitehost/sitehost/internal/publish"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

var (
	_ reconcile.Owner = (*lease.Manager)(nil)
	_ publish.Fence   = (*lease.Manager)(nil)
)

// newLeases returns this builder's lease manager when it shares the sites
// with other builders (config.Server.Leases: role builder, or lease_time
// set), else nil. It follows the sites of the live config, and tells the
// loop of every site taken or lost.
func (s *server) newLeases(st store.Store) *lease.Manager {
	lt := s.cfg.Server.Leases()
	if lt <= 0 {
		return nil
	}
	return lease.New(st, lease.Options{
		LeaseTime: lt,
		Logger:    s.log.With("component", "lease"),
		Sites: func() []site.Name {
			rt := s.rt.Load()
			if rt == nil {
				return nil
			}
			names := make([]site.Name, 0, len(rt.cfg.Sites))
			for _, sc := range rt.cfg.Sites {
				names = append(names, sc.Name)
			}
			return names
		},
		// Ticks start in run, after the loop exists.
		OnChange: func(n site.Name, gen uint64, owned bool) { s.loop.LeaseChanged(n, gen, owned) },
		Busy:     func(n site.Name) bool { return s.loop.Busy(n) },
	})
}

// runLeases holds this builder's leases until ctx ends, then hands them
// back so the other builders take over at once. A failed hand-back only
// delays them by the lease time: it is logged, not fatal.
func (s *server) runLeases(ctx context.Context) {
	if err := s.leases.Run(ctx); err != nil {
		s.log.Warn("handing back the leases failed; the other builders take over after the lease time", "err", err)
	}
}

// fence is the publisher's and the loop's view of the leases: nil (every
// write allowed, every site built) without them.
func (s *server) fence() (publish.Fence, reconcile.Owner) {
	if s.leases == nil {
		return nil, nil
	}
	return s.leases, s.leases
}

// ownsHere reports whether this process builds site name itself: it
// builds, and holds the site's lease when builders share the sites. Else
// a webhook or sync for it becomes a request marker its owner takes.
func (s *server) ownsHere(name site.Name) bool {
	if !s.cfg.Server.Builds() {
		return false
	}
	if s.leases == nil {
		return true
	}
	_, ok := s.leases.Owns(name)
	return ok
}

// fleetJob reports whether this process runs the jobs one process of the
// fleet runs (garbage collection): always without leases.
func (s *server) fleetJob() bool {
	if s.leases == nil {
		return true
	}
	_, ok := s.leases.Fleet()
	return ok
}
