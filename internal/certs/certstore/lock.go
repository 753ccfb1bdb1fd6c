package certstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/sitehost/sitehost/internal/store"
)

// Lock errors, matched with errors.Is.
var (
	// ErrNotHeld: Unlock of a name this Storage has not locked (or has
	// already unlocked).
	ErrNotHeld = errors.New("certstore: lock not held")
	// ErrLockLost: Unlock found that the lock had stopped being ours
	// before the call: it was taken over as stale (this holder stalled, or
	// could not refresh it for LockTTL) or removed. Someone else may have
	// run the critical section meanwhile; their lock was left alone.
	ErrLockLost = errors.New("certstore: lock lost")
)

const (
	// lockDir is the folder of lock objects, under Prefix.
	lockDir = "locks/"
	// maxLockSize bounds the read of a lock object; ours are ~150 bytes.
	maxLockSize = 4 << 10
	// modTimeGrain is the coarsest ModTime a backend reports: S3's HEAD
	// gives Last-Modified in whole seconds. See lockAge.
	modTimeGrain = time.Second
	// maxTryLockAttempts bounds TryLock's loop when the lock object changes
	// under it (released, or taken over by a third party).
	maxTryLockAttempts = 3
)

// lockMeta is the content of a lock object.
type lockMeta struct {
	// Token identifies one acquisition; Unlock deletes only its own.
	Token string `json:"token"`
	// Holder is hostname/pid of the acquirer, for humans.
	Holder  string    `json:"holder"`
	Created time.Time `json:"created"`
	// Refreshed is the holder's clock at the last write. It also makes
	// every refresh change the bytes, hence the ETag: S3's ETag is the MD5
	// of the content, and an unchanged ETag would let a waiter that saw the
	// lock before a refresh take it over with If-Match afterwards.
	Refreshed time.Time `json:"refreshed"`
}

// heldLock is a lock this Storage holds, and its refresher.
type heldLock struct {
	name, key string
	meta      lockMeta // Refreshed is written by the refresher only
	stop      chan struct{}
	done      chan struct{} // closed when the refresher has returned
	etag      string        // refresher-owned: the ETag of our last write
}

// lockKey is the object of the lock name: the name escaped into one key
// element (url.PathEscape: '/' and '*' become %2F and %2A, and "%" itself
// %25, so it is reversible), plus ".lock" as in FileStorage, which also
// keeps "." and ".." from being whole elements.
func (s *Storage) lockKey(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty lock name")
	}
	return s.prefix + lockDir + url.PathEscape(name) + ".lock", nil
}

// Lock takes the lock name, waiting while someone else holds it, until ctx
// ends (then it returns ctx's error).
//
// The lock is the object Prefix+"locks/"+escaped(name)+".lock", created
// with If-None-Match. While it exists, others poll every PollInterval. A
// lock not refreshed for LockTTL is stale (its holder died) and is taken
// over with If-Match on the ETag that was read, so of several waiters only
// one wins; the others keep waiting. The holder rewrites the lock every
// LockTTL/4, with If-Match on its own last ETag, until Unlock; a refresh
// that loses (the lock was taken over) is logged and ends the refreshing.
//
// Staleness compares the lock's ModTime (the server's clock on S3) with
// this host's clock, so clocks must agree to well within LockTTL.
func (s *Storage) Lock(ctx context.Context, name string) error {
	_, err := s.acquire(ctx, name, true)
	return err
}

// TryLock is Lock without the waiting: it reports false if the lock is
// held and fresh. A stale lock is taken over, as in Lock.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	return s.acquire(ctx, name, false)
}

func (s *Storage) acquire(ctx context.Context, name string, wait bool) (bool, error) {
	key, err := s.lockKey(name)
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	meta := lockMeta{Token: rand.Text(), Holder: s.holder}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("locking %s: %w", name, err)
		}
		meta.Created = time.Now()
		meta.Refreshed = meta.Created
		info, err := s.putLock(ctx, key, meta, store.PutOptions{IfNoneMatch: true})
		if err == nil {
			s.hold(name, key, meta, info.ETag)
			return true, nil
		}
		if !errors.Is(err, store.ErrPrecondition) {
			return false, fmt.Errorf("locking %s: %w", name, err)
		}

		// Held by someone: fresh, or stale?
		cur, curInfo, err := s.readLock(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Released since the create failed: try again at once.
		case err != nil:
			return false, fmt.Errorf("locking %s: %w", name, err)
		case lockAge(cur, curInfo) > s.ttl:
			meta.Created = time.Now()
			meta.Refreshed = meta.Created
			info, err := s.putLock(ctx, key, meta, store.PutOptions{IfMatch: curInfo.ETag})
			if err == nil {
				s.log.WarnContext(ctx, "certstore: took over a stale lock",
					"lock", name, "stale_holder", cur.Holder, "last_refresh", lockFresh(cur, curInfo))
				s.hold(name, key, meta, info.ETag)
				return true, nil
			}
			if !lostCondition(err) {
				return false, fmt.Errorf("locking %s: taking over a stale lock: %w", name, err)
			}
			// Lost the race: another waiter took it over, or it was
			// refreshed or released meanwhile. Look again.
		default:
			if !wait {
				return false, nil
			}
			t := time.NewTimer(s.poll)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false, fmt.Errorf("locking %s: %w", name, ctx.Err())
			}
			continue
		}
		if !wait && attempt >= maxTryLockAttempts {
			return false, nil
		}
	}
}

// lockFresh is when the lock was last written, as best known. ModTime is
// the authority (the server's clock on S3), but S3 reports it truncated to
// whole seconds, which at a short LockTTL would make a fresh lock look up
// to a second old. The holder's own Refreshed time refines it within that
// grain, and only within it, so a holder whose clock runs ahead cannot
// keep a dead lock alive for longer than modTimeGrain.
func lockFresh(m lockMeta, info store.Info) time.Time {
	fresh := info.ModTime
	if m.Refreshed.After(fresh) {
		fresh = m.Refreshed
		if limit := info.ModTime.Add(modTimeGrain); fresh.After(limit) {
			fresh = limit
		}
	}
	return fresh
}

func lockAge(m lockMeta, info store.Info) time.Duration {
	return time.Since(lockFresh(m, info))
}

// lostCondition reports whether an If-Match put failed because the object
// is no longer the one we read: changed (a precondition error) or gone. A
// backend may report If-Match on a missing key either way (fsstore: a
// precondition error; S3 services may answer 404).
func lostCondition(err error) bool {
	return errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrNotFound)
}

// putLock writes a lock object.
func (s *Storage) putLock(ctx context.Context, key string, m lockMeta, opts store.PutOptions) (store.Info, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return store.Info{}, err
	}
	opts.ContentType = "application/json"
	return s.st.Put(ctx, key, bytes.NewReader(body), int64(len(body)), opts)
}

// readLock reads a lock object. Content that does not decode (written by
// something else) yields a zero lockMeta: no token, so it is never ours,
// and staleness is judged by ModTime alone.
func (s *Storage) readLock(ctx context.Context, key string) (lockMeta, store.Info, error) {
	obj, info, err := s.st.Get(ctx, key)
	if err != nil {
		return lockMeta{}, store.Info{}, err
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxLockSize))
	if err != nil {
		return lockMeta{}, store.Info{}, err
	}
	var m lockMeta
	if err := json.Unmarshal(data, &m); err != nil {
		s.log.WarnContext(ctx, "certstore: lock object does not decode", "key", key, "err", err)
		m = lockMeta{}
	}
	return m, info, nil
}

// hold records an acquired lock and starts its refresher.
func (s *Storage) hold(name, key string, meta lockMeta, etag string) {
	h := &heldLock{
		name: name, key: key, meta: meta, etag: etag,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.mu.Lock()
	old := s.held[name]
	s.held[name] = h
	s.mu.Unlock()
	if old != nil {
		// Only possible if our earlier hold of name was lost (and then
		// taken over by us again) without an Unlock: its refresher has
		// stopped or will fail; make sure it stops.
		close(old.stop)
	}
	go s.refresh(h)
}

// refresh rewrites h's lock object every LockTTL/4 until h.stop closes or a
// refresh loses its If-Match. A write in flight when stop closes is let
// finish, so that it cannot land after Unlock's delete and bring the lock
// back.
func (s *Storage) refresh(h *heldLock) {
	defer close(h.done)
	interval := s.ttl / 4
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.meta.Refreshed = time.Now()
		// Not tied to stop (see above); bounded so a hung store cannot
		// hold up Unlock for long. A write that takes longer has failed
		// anyway: the next one is due.
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		info, err := s.putLock(ctx, h.key, h.meta, store.PutOptions{IfMatch: h.etag})
		cancel()
		switch {
		case err == nil:
			h.etag = info.ETag
		case lostCondition(err):
			s.log.Warn("certstore: lock lost: it was taken over or removed while held; no longer refreshing it",
				"lock", h.name, "key", h.key)
			return
		default:
			// Retry at the next tick; if this lasts LockTTL, the lock goes
			// stale and the next refresh reports it lost.
			s.log.Warn("certstore: refreshing lock failed", "lock", h.name, "err", err)
		}
	}
}

// Unlock releases the lock name taken by Lock or TryLock: it stops the
// refresher, then deletes the lock object if it still holds our token.
// Errors: ErrNotHeld if this Storage does not hold name; ErrLockLost if
// the lock was taken over or removed meanwhile (the other holder's lock is
// left in place). Either way this Storage no longer holds name afterwards;
// if the delete itself fails, the lock object is left to go stale.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("unlocking %s: %w", name, ErrNotHeld)
	}
	close(h.stop)
	<-h.done

	cur, _, err := s.readLock(ctx, h.key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("unlocking %s: %w: the lock object is gone", name, ErrLockLost)
	case err != nil:
		return fmt.Errorf("unlocking %s: %w", name, err)
	case cur.Token != h.meta.Token:
		return fmt.Errorf("unlocking %s: %w: now held by %s", name, ErrLockLost, cur.Holder)
	}
	// Race: the store has no conditional delete, so the lock could change
	// between the read above and this delete, and the delete would remove
	// someone else's lock. That takes a takeover in between, which needs
	// our lock unrefreshed for LockTTL; it was refreshed at most LockTTL/4
	// before the refresher stopped, so this process would have to stall
	// for most of LockTTL right here.
	if err := s.st.Delete(ctx, h.key); err != nil {
		return fmt.Errorf("unlocking %s: %w", name, err)
	}
	return nil
}
