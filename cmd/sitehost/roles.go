package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sitehost/sitehost/internal/admin"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// A replica that does not build a site (an edge; a builder without the
// site's lease) hands its webhooks and syncs to the site's owner through
// request markers in the bucket (reconcile.PutRequest), which only the
// lease holder takes, and answers the API from the live pointers there.

var (
	_ admin.Loop = bucketStatus{}
	_ admin.Loop = leasedStatus{}
)

// markerTimeout bounds writing a marker, so a webhook's answer does not
// wait on a stuck bucket for long.
const markerTimeout = 10 * time.Second

// dispatchRemote leaves a verified event for the site's builder.
func (s *server) dispatchRemote(ctx context.Context, name site.Name, ev site.Event) error {
	if _, ok := s.rt.Load().cfg.Site(name); !ok {
		return fmt.Errorf("%w %q", reconcile.ErrUnknownSite, name)
	}
	// The webhook answers 202 once the marker is stored: not on the
	// request's ctx alone, which a forge may cut short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markerTimeout)
	defer cancel()
	key, err := reconcile.PutRequest(ctx, s.store, name, reconcile.EventRequest(ev, time.Now()))
	if err != nil {
		return err
	}
	s.log.Info("event left for the builder", "site", name, "kind", ev.Kind, "ref", ev.Ref, "key", key)
	return nil
}

// triggerRemote asks the site's builder for a whole sync; it returns the
// marker's key.
func (s *server) triggerRemote(ctx context.Context, name site.Name) (string, error) {
	if _, ok := s.rt.Load().cfg.Site(name); !ok {
		return "", fmt.Errorf("%w %q", reconcile.ErrUnknownSite, name)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markerTimeout)
	defer cancel()
	return reconcile.PutRequest(ctx, s.store, name, reconcile.Request{Sync: true, At: time.Now()})
}

// bucketStatus is the admin API's control loop on an edge: status from
// the live pointers in the bucket, syncs as request markers. What only the
// builder knows (a newer commit being built, a failed build, the running
// attempt's log) it cannot show.
type bucketStatus struct{ s *server }

func (b bucketStatus) Status() []reconcile.Status {
	ctx, cancel := context.WithTimeout(context.Background(), markerTimeout)
	defer cancel()
	rt := b.s.rt.Load()
	out := make([]reconcile.Status, 0, len(rt.cfg.Sites))
	for _, sc := range rt.cfg.Sites {
		out = append(out, b.status(ctx, sc.Name))
	}
	return out
}

func (b bucketStatus) SiteStatus(name site.Name) (reconcile.Status, bool) {
	if _, ok := b.s.rt.Load().cfg.Site(name); !ok {
		return reconcile.Status{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), markerTimeout)
	defer cancel()
	return b.status(ctx, name), true
}

// status reads a site's pointers: a channel with a live deploy is Synced
// as far as an edge can tell.
func (b bucketStatus) status(ctx context.Context, name site.Name) reconcile.Status {
	st := reconcile.Status{Site: name, State: site.OutOfSync}
	ptrs, err := b.s.publisher.Channels(ctx, name)
	if err != nil {
		b.s.log.Warn("reading the live pointers for the API failed", "site", name, "err", err)
		st.Error = "the live pointers cannot be read from storage now"
		return st
	}
	st.Channels = make(map[site.Channel]reconcile.ChannelStatus, len(ptrs))
	for c, p := range ptrs {
		st.Channels[c] = reconcile.ChannelStatus{State: site.Synced, URL: b.s.channelURL(name, c),
			LiveCommit: p.Commit, LiveDeploy: p.Deploy, LastSync: p.PublishedAt}
	}
	if p, ok := ptrs[site.Production]; ok {
		st.State, st.LiveCommit, st.LiveDeploy, st.LastSync = site.Synced, p.Commit, p.Deploy, p.PublishedAt
	}
	if owner, ok := readOwnerStatus(ctx, b.s.store, name); ok {
		st = withOwner(st, owner)
	}
	return st
}

func (b bucketStatus) Trigger(name site.Name) error {
	_, err := b.s.triggerRemote(context.Background(), name)
	return err
}

// Sync leaves a marker and waits until a builder has taken it (not until
// the build is done: the edge cannot see that), then answers the pointers.
func (b bucketStatus) Sync(ctx context.Context, name site.Name) (reconcile.Status, error) {
	key, err := b.s.triggerRemote(ctx, name)
	if err != nil {
		return reconcile.Status{}, err
	}
	for {
		taken, err := reconcile.RequestTaken(ctx, b.s.store, key)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			b.s.log.Warn("looking for a request marker failed", "key", key, "err", err)
		}
		if taken {
			st, _ := b.SiteStatus(name)
			return st, nil
		}
		select {
		case <-ctx.Done():
			return reconcile.Status{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// leasedStatus is the admin API's control loop on a builder that shares
// the sites through leases: the loop for the sites it holds, the bucket
// (as on an edge) for the others', whose state only their owner knows.
type leasedStatus struct{ s *server }

func (l leasedStatus) Status() []reconcile.Status {
	out := l.s.loop.Status()
	for i, st := range out {
		if !l.s.ownsHere(st.Site) {
			out[i], _ = bucketStatus(l).SiteStatus(st.Site)
		}
	}
	return out
}

func (l leasedStatus) SiteStatus(name site.Name) (reconcile.Status, bool) {
	if l.s.ownsHere(name) {
		return l.s.loop.SiteStatus(name)
	}
	return bucketStatus(l).SiteStatus(name)
}

func (l leasedStatus) Trigger(name site.Name) error {
	if l.s.ownsHere(name) {
		return l.s.loop.Trigger(name)
	}
	return bucketStatus(l).Trigger(name)
}

func (l leasedStatus) Sync(ctx context.Context, name site.Name) (reconcile.Status, error) {
	if l.s.ownsHere(name) {
		return l.s.loop.Sync(ctx, name)
	}
	return bucketStatus(l).Sync(ctx, name)
}

// configPort is the port of a listener address in the config, for a
// replica that does not bind it (a builder's base URLs).
func configPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}
