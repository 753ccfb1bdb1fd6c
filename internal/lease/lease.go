package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
)

// DefaultLeaseTime is Options.LeaseTime's default.
const DefaultLeaseTime = 15 * time.Second

// Keys of the lease objects.
const (
	prefix        = "leases/"
	buildersDir   = prefix + "builders/"
	sitesDir      = prefix + "sites/"
	fleetKey      = prefix + "fleet.json"
	jsonExt       = ".json"
	fleetSlot     = "" // the fleet lease's slot name; site names are never empty
	contentTypeJS = "application/json"
)

// Options configure a Manager.
type Options struct {
	// ID names this builder in the bucket; it must differ between
	// processes, restarts included (default: host-pid-random).
	ID string
	// LeaseTime: how long a lease outlives its holder's last heartbeat
	// (default 15 s).
	LeaseTime time.Duration
	// Interval: how often the heartbeat is written and the leases looked
	// at (default LeaseTime/3).
	Interval time.Duration
	// Sites returns the sites to share, read at every tick so a reload is
	// followed.
	Sites func() []site.Name
	// OnChange hears that a site was taken (owned, with its generation) or
	// lost. It is called from the ticking goroutine, never under a lock,
	// and must not block.
	OnChange func(s site.Name, gen uint64, owned bool)
	// Busy, when set, says a site has a build under way: a surplus lease
	// is handed back only while its site is idle, so handing over costs
	// no build.
	Busy   func(site.Name) bool
	Logger *slog.Logger
	// Now is the clock (tests drive it).
	Now func() time.Time
}

// heartbeat is a builder's leases/builders/<id>.json.
type heartbeat struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// record is a site's (or the fleet's) lease object.
type record struct {
	Holder     string    `json:"holder"`
	Generation uint64    `json:"generation"`
	Since      time.Time `json:"since,omitzero"`
}

// seen is an object as this builder last read it.
type seen[T any] struct {
	etag string
	at   time.Time // when this version was first seen, on our clock
	v    T
}

// Manager holds this builder's leases. Owns and Fleet are safe for
// concurrent use; Tick and Run are called from one goroutine.
type Manager struct {
	st   store.Store
	opts Options
	log  *slog.Logger

	// The bucket as last read (the ticking goroutine only).
	builders map[string]seen[heartbeat]
	leases   map[string]seen[record] // by slot: site name, or fleetSlot

	mu         sync.Mutex
	validUntil time.Time         // our heartbeat's validity, on our clock
	held       map[string]uint64 // slot → generation we took it with
	pending    []change          // OnChange calls to make after the tick
}

type change struct {
	slot  string
	gen   uint64
	owned bool
}

// New returns a Manager for st.
func New(st store.Store, opts Options) *Manager {
	if opts.LeaseTime <= 0 {
		opts.LeaseTime = DefaultLeaseTime
	}
	if opts.Interval <= 0 {
		opts.Interval = opts.LeaseTime / 3
	}
	if opts.ID == "" {
		opts.ID = DefaultID()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sites == nil {
		opts.Sites = func() []site.Name { return nil }
	}
	return &Manager{
		st: st, opts: opts, log: opts.Logger.With("builder", opts.ID),
		builders: make(map[string]seen[heartbeat]), leases: make(map[string]seen[record]),
		held: make(map[string]uint64),
	}
}

// DefaultID is a builder ID unique to this process: host name, process ID
// and random bits, so a restarted builder never mistakes its previous
// life's leases for its own.
func DefaultID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, host)
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID is this builder's holder name.
func (m *Manager) ID() string { return m.opts.ID }

// Owns reports whether this builder holds site s's lease now, and with
// which generation. It consults the clock, so a process resumed after a
// pause longer than its lease owns nothing from its first instruction on.
func (m *Manager) Owns(s site.Name) (uint64, bool) { return m.owns(string(s)) }

// Fleet reports whether this builder holds the fleet lease: it runs the
// jobs one builder of the fleet runs (garbage collection).
func (m *Manager) Fleet() (uint64, bool) { return m.owns(fleetSlot) }

func (m *Manager) owns(slot string) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gen, ok := m.held[slot]
	if !ok || !m.opts.Now().Before(m.validUntil) {
		return 0, false
	}
	return gen, true
}

// Owned lists the sites this builder holds, sorted.
func (m *Manager) Owned() []site.Name {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []site.Name
	if !m.opts.Now().Before(m.validUntil) {
		return nil
	}
	for slot := range m.held {
		if slot != fleetSlot {
			out = append(out, site.Name(slot))
		}
	}
	slices.Sort(out)
	return out
}

// Run ticks every Interval, and when a builder's heartbeat is due to
// expire, until ctx ends; then it releases every lease, so others take
// over at once rather than after LeaseTime.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return m.Release(rctx)
		case <-t.C:
		}
		next, err := m.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Warn("lease tick failed", "err", err)
		}
		t.Reset(max(next.Sub(m.opts.Now()), 10*time.Millisecond))
	}
}

// Tick does one round: the heartbeat, then reading the bucket's leases,
// then taking and handing back. It returns when the next round is due: the
// next heartbeat, or sooner when another builder's heartbeat expires.
func (m *Manager) Tick(ctx context.Context) (time.Time, error) {
	defer m.notify()
	start := m.opts.Now()
	next := start.Add(m.opts.Interval)
	err := m.beat(ctx, start)
	if err != nil {
		m.mu.Lock()
		if !start.Before(m.validUntil) {
			m.dropAll("heartbeat failed past the lease time")
		}
		m.mu.Unlock()
		return next, err
	}
	if err := m.read(ctx); err != nil {
		return next, err
	}
	now := m.opts.Now()
	for id, hb := range m.builders {
		if id == m.opts.ID || m.dead(hb, now) {
			continue
		}
		// Wake when it would count as dead, to take its sites over within
		// the lease time rather than up to an Interval later.
		at := hb.v.Expires
		if seen := hb.at.Add(2 * m.opts.Interval); seen.After(at) {
			at = seen
		}
		if late := hb.at.Add(m.opts.LeaseTime); late.Before(at) {
			at = late
		}
		if at.After(now) && at.Before(next) {
			next = at.Add(50 * time.Millisecond)
		}
	}
	err = m.balance(ctx, now)
	if _, ok := m.owns(fleetSlot); ok {
		err = errors.Join(err, m.collect(ctx, now))
	}
	return next, err
}

// collect deletes the heartbeats of builders dead for a while: every
// process start leaves one behind. The fleet lease's holder does it.
func (m *Manager) collect(ctx context.Context, now time.Time) error {
	for id, hb := range m.builders {
		if id == m.opts.ID || now.Sub(hb.at) < collectAfter*m.opts.LeaseTime {
			continue
		}
		if err := m.st.Delete(ctx, buildersDir+id+jsonExt); err != nil {
			return fmt.Errorf("deleting the heartbeat of %q: %w", id, err)
		}
		delete(m.builders, id)
		m.log.Info("deleted the heartbeat of a dead builder", "dead", id)
	}
	return nil
}

// collectAfter: a heartbeat unchanged for this many lease times is
// deleted. A builder paused that long writes it again when it resumes.
const collectAfter = 20

// beat writes the heartbeat. Success extends our leases to LeaseTime
// minus a margin after start; a lapse since the last success means others
// may have taken our leases, so they are all dropped and taken anew.
func (m *Manager) beat(ctx context.Context, start time.Time) error {
	hb := heartbeat{Holder: m.opts.ID, Expires: start.Add(m.opts.LeaseTime)}
	if err := m.put(ctx, buildersDir+m.opts.ID+jsonExt, hb, store.PutOptions{}); err != nil {
		return fmt.Errorf("writing heartbeat: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.held) > 0 && !start.Before(m.validUntil) {
		m.dropAll("heartbeat lapsed (paused or cut off past the lease time)")
	}
	m.validUntil = start.Add(m.opts.LeaseTime - m.margin())
	return nil
}

func (m *Manager) valid() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.validUntil
}

// margin is how much sooner than others the holder gives its leases up,
// for clock rate differences and the time a write takes to land.
func (m *Manager) margin() time.Duration { return m.opts.LeaseTime / 5 }

// dropAll forgets every lease held; m.mu is held.
func (m *Manager) dropAll(why string) {
	if len(m.held) == 0 {
		return
	}
	m.log.Warn("lost the leases", "reason", why, "leases", len(m.held))
	for slot := range m.held {
		m.dropLocked(slot, why)
	}
}

func (m *Manager) dropLocked(slot, why string) {
	if _, ok := m.held[slot]; !ok {
		return
	}
	delete(m.held, slot)
	m.pending = append(m.pending, change{slot: slot})
	if why != "" {
		m.log.Info("lease lost", "lease", slotKey(slot), "reason", why)
	}
}

func (m *Manager) notify() {
	m.mu.Lock()
	p := m.pending
	m.pending = nil
	m.mu.Unlock()
	if m.opts.OnChange == nil {
		return
	}
	for _, c := range p {
		if c.slot != fleetSlot {
			m.opts.OnChange(site.Name(c.slot), c.gen, c.owned)
		}
	}
}

// read lists leases/ once and reads the objects that changed since.
func (m *Manager) read(ctx context.Context) error {
	now := m.opts.Now()
	hbs := make(map[string]seen[heartbeat])
	recs := make(map[string]seen[record])
	var todo []store.Info
	for info, err := range m.st.List(ctx, prefix) {
		if err != nil {
			return fmt.Errorf("listing leases: %w", err)
		}
		name, ok := strings.CutSuffix(info.Key, jsonExt)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(name, buildersDir):
			id := strings.TrimPrefix(name, buildersDir)
			if id == m.opts.ID {
				continue // ours: known without a read
			}
			hb, err := readSeen(ctx, m, info, m.builders[id], now)
			if err != nil {
				return err
			}
			hbs[id] = hb
		case strings.HasPrefix(name, sitesDir) || info.Key == fleetKey:
			slot := strings.TrimPrefix(name, sitesDir)
			if info.Key == fleetKey {
				slot = fleetSlot
			}
			if old := m.leases[slot]; old.etag == info.ETag && old.etag != "" {
				recs[slot] = old
			} else {
				todo = append(todo, info)
			}
		}
	}
	// Leases that changed are read in parallel: a builder starting on a
	// bucket of 10,000 sites reads them all once.
	read := make([]seen[record], len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, info := range todo {
		g.Go(func() (err error) {
			read[i], err = readSeen(gctx, m, info, seen[record]{}, now)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, info := range todo {
		slot := strings.TrimPrefix(strings.TrimSuffix(info.Key, jsonExt), sitesDir)
		if info.Key == fleetKey {
			slot = fleetSlot
		}
		recs[slot] = read[i]
	}
	m.builders, m.leases = hbs, recs
	// A listing is no snapshot: a builder that started during it may
	// hold a lease listed after its heartbeat was passed. Listing the
	// heartbeats again settles whether an unknown holder exists.
	for _, r := range recs {
		if _, known := hbs[r.v.Holder]; r.v.Holder != "" && r.v.Holder != m.opts.ID && !known {
			return m.rereadBuilders(ctx, now)
		}
	}
	return nil
}

func (m *Manager) rereadBuilders(ctx context.Context, now time.Time) error {
	for info, err := range m.st.List(ctx, buildersDir) {
		if err != nil {
			return fmt.Errorf("listing heartbeats: %w", err)
		}
		id, ok := strings.CutSuffix(strings.TrimPrefix(info.Key, buildersDir), jsonExt)
		if !ok || id == m.opts.ID {
			continue
		}
		hb, err := readSeen(ctx, m, info, m.builders[id], now)
		if err != nil {
			return err
		}
		m.builders[id] = hb
	}
	return nil
}

// readSeen returns the object of info, reading it only when its ETag
// differs from the version already seen.
func readSeen[T any](ctx context.Context, m *Manager, info store.Info, old seen[T], now time.Time) (seen[T], error) {
	if old.etag == info.ETag && old.etag != "" {
		return old, nil
	}
	var v T
	etag, err := m.get(ctx, info.Key, &v)
	if errors.Is(err, store.ErrNotFound) {
		return seen[T]{}, nil // gone since the listing: as if never there
	}
	if err != nil {
		return seen[T]{}, err
	}
	return seen[T]{etag: etag, at: now, v: v}, nil
}

// dead reports whether a heartbeat has expired. Both rules need the
// heartbeat unchanged for a while as we saw it, so a writer whose clock
// is behind ours is not declared dead while it writes.
func (m *Manager) dead(hb seen[heartbeat], now time.Time) bool {
	if hb.etag == "" {
		return true
	}
	age := now.Sub(hb.at)
	return age >= m.opts.LeaseTime || (!now.Before(hb.v.Expires) && age >= 2*m.opts.Interval)
}

// live reports whether holder has a heartbeat that has not expired.
func (m *Manager) live(holder string, now time.Time) bool {
	if holder == "" {
		return false
	}
	if holder == m.opts.ID {
		return true
	}
	hb, ok := m.builders[holder]
	return ok && !m.dead(hb, now)
}

// balance checks what we hold against the bucket, then takes leases up to
// our share and hands back a surplus one.
func (m *Manager) balance(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	for slot, gen := range m.held {
		r := m.leases[slot]
		if r.v.Holder != m.opts.ID || r.v.Generation != gen {
			// Taken while we thought it ours: we were paused or cut off
			// past the lease, which is worth a warning.
			m.log.Warn("lost a lease to another builder", "lease", slotKey(slot), "generation", gen,
				"holder", r.v.Holder, "holder_generation", r.v.Generation)
			m.dropLocked(slot, "")
		}
	}
	held := make(map[string]uint64, len(m.held))
	for k, v := range m.held {
		held[k] = v
	}
	m.mu.Unlock()

	if !m.opts.Now().Before(m.valid()) {
		// The tick outlived the heartbeat it began with (a first read of
		// a large bucket, a slow link): what it took would not be ours.
		return nil
	}
	sites := m.opts.Sites()
	wanted := make(map[string]bool, len(sites))
	for _, s := range sites {
		wanted[string(s)] = true
	}
	var errs []error
	// The fleet lease goes to whoever finds it free.
	if _, ok := held[fleetSlot]; !ok && m.free(fleetSlot, now) {
		if _, err := m.takeAll(ctx, []string{fleetSlot}, now); err != nil {
			errs = append(errs, err)
		}
	}
	// Leases of sites no longer configured are handed back.
	for slot := range held {
		if slot != fleetSlot && !wanted[slot] {
			errs = append(errs, m.release(ctx, slot, "site not configured"))
			delete(held, slot)
		}
	}
	delete(held, fleetSlot)

	live := 1 // ourselves
	count := make(map[string]int)
	for id := range m.builders {
		if id != m.opts.ID && m.live(id, now) {
			live++
			count[id] = 0
		}
	}
	for _, s := range sites {
		if h := m.leases[string(s)].v.Holder; h != m.opts.ID && m.live(h, now) {
			count[h]++
		}
	}
	target := (len(sites) + live - 1) / live
	floor := len(sites) / live

	mine := len(held)
	if mine < target {
		var free []string
		for _, s := range sites {
			if _, ok := held[string(s)]; !ok && m.free(string(s), now) {
				free = append(free, string(s))
			}
		}
		slices.SortFunc(free, func(a, b string) int { return compareScore(m.score(b), m.score(a)) })
		// Takes go in parallel batches; one another builder won moves on to
		// the next free site, so a dead builder's sites all move in one
		// tick. The time budget keeps a tick on a slow link (or of a
		// builder taking 3,000 sites) short of the lease it renews.
		budget := m.opts.Now().Add(m.opts.Interval / 2)
		for len(free) > 0 && mine < target && !m.opts.Now().After(budget) {
			k := min(takeBatch, target-mine, len(free))
			got, err := m.takeAll(ctx, free[:k], now)
			free, mine = free[k:], mine+got
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	// A surplus goes back one lease per tick: above the target, or above
	// the floor while another builder is under it and we hold the most.
	surplus := mine > target
	if !surplus && mine > floor {
		most := true
		for id, n := range count {
			if n > mine || n == mine && id < m.opts.ID {
				most = false
			}
		}
		under := slices.ContainsFunc(slices.Collect(maps.Values(count)), func(n int) bool { return n < floor })
		surplus = most && under
	}
	if !surplus {
		return errors.Join(errs...)
	}
	// One lease per tick, or an eighth of the target on a large fleet, so
	// 10,000 sites spread in a minute rather than in hours.
	n := max(1, min(mine-target, target/8))
	give := slices.Collect(maps.Keys(held))
	if m.opts.Busy != nil {
		give = slices.DeleteFunc(give, func(slot string) bool { return m.opts.Busy(site.Name(slot)) })
	}
	slices.SortFunc(give, func(a, b string) int { return compareScore(m.score(a), m.score(b)) })
	budget := m.opts.Now().Add(m.opts.Interval / 2)
	for _, slot := range give[:min(n, len(give))] {
		if m.opts.Now().After(budget) {
			break
		}
		errs = append(errs, m.release(ctx, slot, "handing over to spread sites"))
	}
	return errors.Join(errs...)
}

// free reports whether slot's lease can be taken: none written, handed
// back, held by a dead builder, or naming us though we do not hold it (a
// lapse, or a release whose write failed).
func (m *Manager) free(slot string, now time.Time) bool {
	r, ok := m.leases[slot]
	if !ok || r.etag == "" || r.v.Holder == "" || r.v.Holder == m.opts.ID {
		return true
	}
	return !m.live(r.v.Holder, now)
}

// score is slot's rendezvous hash for this builder: each builder prefers
// other sites, so takes rarely collide.
func (m *Manager) score(slot string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(m.opts.ID + "\x00" + slot)) //nolint:errcheck // a hash.Hash never fails
	return h.Sum64()
}

func compareScore(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readConcurrency bounds the lease reads in flight.
const readConcurrency = 16

// takeBatch is how many leases one builder takes at once.
const takeBatch = 16

// takeAll takes the leases of slots in parallel and returns how many it
// got: each is written with the next generation, conditional on the
// version read; losing a race is no error.
func (m *Manager) takeAll(ctx context.Context, slots []string, now time.Time) (int, error) {
	type result struct {
		rec record
		ok  bool
		err error
	}
	olds := make([]seen[record], len(slots))
	for i, slot := range slots {
		olds[i] = m.leases[slot]
	}
	results := make([]result, len(slots))
	var wg sync.WaitGroup
	for i, slot := range slots {
		wg.Go(func() {
			old := olds[i]
			rec := record{Holder: m.opts.ID, Generation: old.v.Generation + 1, Since: now.UTC()}
			opts := store.PutOptions{IfNoneMatch: true}
			if old.etag != "" {
				opts = store.PutOptions{IfMatch: old.etag}
			}
			err := m.put(ctx, slotKey(slot), rec, opts)
			switch {
			case errors.Is(err, store.ErrPrecondition):
			case err != nil:
				results[i].err = fmt.Errorf("taking lease of %q: %w", slot, err)
			default:
				results[i] = result{rec: rec, ok: true}
			}
		})
	}
	wg.Wait()
	got := 0
	var errs []error
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, r := range results {
		errs = append(errs, r.err)
		if !r.ok {
			continue
		}
		got++
		// A take that lands after the heartbeat lapsed is no lease: the
		// next tick drops it and others may take it meanwhile.
		m.held[slots[i]] = r.rec.Generation
		m.pending = append(m.pending, change{slot: slots[i], gen: r.rec.Generation, owned: true})
		m.log.Info("lease taken", "lease", slotKey(slots[i]), "generation", r.rec.Generation, "from", olds[i].v.Holder)
		// The cached version is stale now; the next listing rereads it.
		m.leases[slots[i]] = seen[record]{v: r.rec}
	}
	return got, errors.Join(errs...)
}

// release hands slot's lease back (holder ""), dropping it first so a
// build of it stops before another builder can start one.
func (m *Manager) release(ctx context.Context, slot, why string) error {
	m.mu.Lock()
	gen := m.held[slot]
	m.dropLocked(slot, why)
	m.mu.Unlock()
	old := m.leases[slot]
	if old.v.Holder != m.opts.ID || old.v.Generation != gen {
		return nil
	}
	err := m.putRelease(ctx, slot, old)
	if err != nil {
		return fmt.Errorf("handing back lease of %q: %w", slot, err)
	}
	return nil
}

func (m *Manager) putRelease(ctx context.Context, slot string, old seen[record]) error {
	opts := store.PutOptions{IfMatch: old.etag}
	if old.etag == "" { // taken this tick: no version known
		var cur record
		etag, err := m.get(ctx, slotKey(slot), &cur)
		if err != nil {
			return err
		}
		if cur.Holder != m.opts.ID || cur.Generation != old.v.Generation {
			return nil
		}
		opts.IfMatch = etag
	}
	err := m.put(ctx, slotKey(slot), record{Generation: old.v.Generation}, opts)
	if errors.Is(err, store.ErrPrecondition) {
		return nil // someone took it already
	}
	return err
}

// Release hands back every lease and deletes the heartbeat, so the other
// builders take over at their next tick: the graceful end of a builder.
func (m *Manager) Release(ctx context.Context) error {
	m.mu.Lock()
	held := make(map[string]uint64, len(m.held))
	for k, v := range m.held {
		held[k] = v
	}
	m.dropAll("")
	m.validUntil = time.Time{}
	m.mu.Unlock()
	m.notify()
	var errs []error
	for slot, gen := range held {
		old := m.leases[slot]
		old.v = record{Holder: m.opts.ID, Generation: gen}
		if err := m.putRelease(ctx, slot, old); err != nil {
			errs = append(errs, fmt.Errorf("handing back lease of %q: %w", slot, err))
		}
	}
	if err := m.st.Delete(ctx, buildersDir+m.opts.ID+jsonExt); err != nil {
		errs = append(errs, fmt.Errorf("deleting heartbeat: %w", err))
	}
	m.log.Info("leases released", "leases", len(held))
	return errors.Join(errs...)
}

func slotKey(slot string) string {
	if slot == fleetSlot {
		return fleetKey
	}
	return sitesDir + slot + jsonExt
}

func (m *Manager) put(ctx context.Context, key string, v any, opts store.PutOptions) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	opts.ContentType = contentTypeJS
	_, err = m.st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
	return err
}

// get reads a JSON object and its ETag.
func (m *Manager) get(ctx context.Context, key string, v any) (string, error) {
	obj, info, err := m.st.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, 64<<10))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return "", fmt.Errorf("decoding %s: %w", key, err)
	}
	return info.ETag, nil
}
