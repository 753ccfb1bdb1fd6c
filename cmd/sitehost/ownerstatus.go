package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// A site's owner (the builder that holds its lease) is the only process
// that knows what the live pointers do not say: a build under way, a
// failed commit and why, how many builds. So that the API on any replica
// shows the same status, the owner writes a site's whole status to
// status/<site>.json whenever its loop reports (a build started, went
// live, failed, a channel removed) — never while idle — and the others
// read it beside the pointers (bucketStatus).

const (
	statusPrefix  = "status/"
	maxStatusSize = 64 << 10
)

func statusKey(name site.Name) string { return statusPrefix + string(name) + ".json" }

// ownerStatus writes the statuses of the sites its loop reports on, the
// latest of each, from one goroutine: Report does not block the loop.
type ownerStatus struct {
	s     *server
	mu    sync.Mutex
	dirty map[site.Name]bool
	wake  chan struct{}
}

func newOwnerStatus(s *server) *ownerStatus {
	return &ownerStatus{s: s, dirty: map[site.Name]bool{}, wake: make(chan struct{}, 1)}
}

func (o *ownerStatus) Report(name site.Name, _ reconcile.Report) {
	o.mu.Lock()
	o.dirty[name] = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run writes what was reported until ctx ends.
func (o *ownerStatus) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		o.mu.Lock()
		names := slices.Sorted(maps.Keys(o.dirty))
		clear(o.dirty)
		o.mu.Unlock()
		for _, name := range names {
			if err := o.write(ctx, name); err != nil && ctx.Err() == nil {
				o.s.log.Warn("sharing the site's status through the bucket failed", "site", name, "err", err)
			}
		}
	}
}

func (o *ownerStatus) write(ctx context.Context, name site.Name) error {
	st, ok := o.s.loop.SiteStatus(name)
	if !ok {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil || len(data) > maxStatusSize {
		return errors.Join(err, errors.New("status too large"))
	}
	_, err = o.s.store.Put(ctx, statusKey(name), bytes.NewReader(data), int64(len(data)), store.PutOptions{ContentType: "application/json"})
	return err
}

// readOwnerStatus reads what the site's owner last wrote; false when there
// is nothing usable.
func readOwnerStatus(ctx context.Context, st store.Store, name site.Name) (reconcile.Status, bool) {
	obj, info, err := st.Get(ctx, statusKey(name))
	if err != nil {
		return reconcile.Status{}, false
	}
	defer obj.Close()
	if info.Size > maxStatusSize {
		return reconcile.Status{}, false
	}
	data, err := io.ReadAll(io.LimitReader(obj, maxStatusSize+1))
	var s reconcile.Status
	if err != nil || len(data) > maxStatusSize || json.Unmarshal(data, &s) != nil || s.Site != name {
		return reconcile.Status{}, false
	}
	return s, true
}

// withOwner adds to st (read from the live pointers) what the owner knows:
// states, errors, wanted commits and counts. The pointers stay the truth
// for what is live.
func withOwner(st, owner reconcile.Status) reconcile.Status {
	st.State, st.Desired, st.Error, st.FailedAt = owner.State, owner.Desired, owner.Error, owner.FailedAt
	st.Builds, st.Reused, st.Repairs = owner.Builds, owner.Reused, owner.Repairs
	if st.Channels == nil {
		st.Channels = map[site.Channel]reconcile.ChannelStatus{}
	}
	for c, oc := range owner.Channels {
		cs, live := st.Channels[c]
		if !live {
			// Not live yet (a first build under way, or failed): the
			// owner's word alone, without a live deploy.
			oc.LiveCommit, oc.LiveDeploy = "", ""
			st.Channels[c] = oc
			continue
		}
		cs.State, cs.Desired, cs.Error, cs.FailedAt = oc.State, oc.Desired, oc.Error, oc.FailedAt
		st.Channels[c] = cs
	}
	return st
}
