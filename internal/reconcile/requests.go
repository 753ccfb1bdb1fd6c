package reconcile

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// Request markers carry webhooks and syncs from replicas that do not build
// a site (edges) to the one that does, through the bucket:
// requests/<site>/<id>, where id sorts by time. A builder lists the prefix,
// dispatches each marker of a site it builds and deletes it. Markers hold
// the verified event's few fields, never the forge's payload.
const (
	RequestPrefix = "requests/"
	// MaxRequestSize bounds a marker, written and read: the fields are
	// small, and a bigger object is not ours.
	MaxRequestSize = 4 << 10
	// requestMaxAge drops markers no builder takes (a site removed from the
	// config): the next poll covers what they asked for.
	requestMaxAge = time.Hour
)

// ErrRequestTooLarge is a marker over MaxRequestSize.
var ErrRequestTooLarge = errors.New("reconcile: request marker too large")

// Request is what a marker asks of a site's builder: a whole sync, or one
// webhook event.
type Request struct {
	Sync     bool           `json:"sync,omitempty"`
	Forge    string         `json:"forge,omitempty"`
	Kind     site.EventKind `json:"kind,omitempty"`
	Ref      string         `json:"ref,omitempty"`
	Commit   site.Commit    `json:"commit,omitempty"`
	PR       int            `json:"pr,omitempty"`
	Fork     bool           `json:"fork,omitempty"`
	Delivery string         `json:"delivery,omitempty"`
	At       time.Time      `json:"at"`
}

// EventRequest is the marker of a verified event.
func EventRequest(ev site.Event, now time.Time) Request {
	return Request{Forge: ev.Forge, Kind: ev.Kind, Ref: ev.Ref, Commit: ev.Commit, PR: ev.PR, Fork: ev.Fork,
		Delivery: ev.Delivery, At: now.UTC()}
}

func (r Request) event() site.Event {
	return site.Event{Forge: r.Forge, Kind: r.Kind, Ref: r.Ref, Commit: r.Commit, PR: r.PR, Fork: r.Fork, Delivery: r.Delivery}
}

// PutRequest writes a marker for name and returns its key.
func PutRequest(ctx context.Context, st store.Store, name site.Name, r Request) (string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encoding request: %w", err)
	}
	if len(data) > MaxRequestSize {
		return "", fmt.Errorf("%w: %d bytes", ErrRequestTooLarge, len(data))
	}
	var rnd [8]byte
	rand.Read(rnd[:]) //nolint:errcheck // crypto/rand.Read never fails
	key := fmt.Sprintf("%s%s/%013x-%s", RequestPrefix, name, r.At.UnixMilli(), hex.EncodeToString(rnd[:]))
	if _, err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)),
		store.PutOptions{IfNoneMatch: true, ContentType: "application/json"}); err != nil {
		return "", fmt.Errorf("writing request %s: %w", key, err)
	}
	return key, nil
}

// RequestTaken reports whether a builder has taken the marker at key.
func RequestTaken(ctx context.Context, st store.Store, key string) (bool, error) {
	_, err := st.Stat(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// WatchRequests takes the markers of this loop's sites every interval
// (default 1s) until ctx ends: one List of RequestPrefix per tick, so an
// idle fleet costs a request a second per builder, not per site. Each
// marker is dispatched as a local request would be, then deleted; a builder
// that dies in between leaves it to be taken again, and requests for a
// commit already live coalesce into nothing.
func (l *Loop) WatchRequests(ctx context.Context, st store.Store, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := l.takeRequests(ctx, st); err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("reading request markers failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Loop) takeRequests(ctx context.Context, st store.Store) error {
	for info, err := range st.List(ctx, RequestPrefix) {
		if err != nil {
			return fmt.Errorf("listing requests: %w", err)
		}
		name, _, ok := strings.Cut(strings.TrimPrefix(info.Key, RequestPrefix), "/")
		if !ok || !l.takes(site.Name(name)) {
			if time.Since(info.ModTime) > requestMaxAge {
				st.Delete(ctx, info.Key) //nolint:errcheck // the next tick tries again
			}
			continue
		}
		if err := l.takeRequest(ctx, st, site.Name(name), info); err != nil {
			l.opts.Logger.Warn("dropping a request marker", "key", info.Key, "err", err)
		}
		if err := st.Delete(ctx, info.Key); err != nil {
			return fmt.Errorf("deleting request %s: %w", info.Key, err)
		}
	}
	return nil
}

// takeRequest dispatches one marker; an error means it cannot be used.
func (l *Loop) takeRequest(ctx context.Context, st store.Store, name site.Name, info store.Info) error {
	if info.Size > MaxRequestSize {
		return fmt.Errorf("%w: %d bytes", ErrRequestTooLarge, info.Size)
	}
	obj, _, err := st.Get(ctx, info.Key)
	if errors.Is(err, store.ErrNotFound) {
		return nil // another taker was first
	}
	if err != nil {
		return fmt.Errorf("reading request: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(obj, MaxRequestSize+1))
	obj.Close()
	if err != nil {
		return fmt.Errorf("reading request: %w", err)
	}
	if len(data) > MaxRequestSize {
		return fmt.Errorf("%w: over %d bytes", ErrRequestTooLarge, MaxRequestSize)
	}
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("decoding request: %w", err)
	}
	l.opts.Logger.Info("request from another replica", "site", name, "sync", r.Sync, "kind", r.Kind, "ref", r.Ref,
		"age", time.Since(r.At).Round(time.Millisecond))
	if r.Sync {
		return l.Trigger(name)
	}
	return l.Dispatch(ctx, name, r.event())
}

// takes reports whether this loop serves requests for site name: it has
// the site and, when builders share sites, holds its lease; otherwise the
// marker is the owner's to take.
func (l *Loop) takes(name site.Name) bool {
	if _, ok := l.worker(name); !ok {
		return false
	}
	if l.opts.Owner == nil {
		return true
	}
	_, ok := l.opts.Owner.Owns(name)
	return ok
}
