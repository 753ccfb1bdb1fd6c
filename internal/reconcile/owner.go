package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/site"
)

// ErrLeaseLost: another builder took the site over while this one worked
// on it; what was under way is abandoned for the new owner to redo.
var ErrLeaseLost = errors.New("reconcile: site lease lost")

// Owner says whether this process holds a site's lease, and with which
// generation (lease.Manager).
type Owner interface {
	Owns(site.Name) (gen uint64, ok bool)
}

// LeaseChanged hears that this process took (owned) or lost a site's
// lease: a lost site's run is cancelled at once; a taken one is synced,
// which redoes whatever its previous owner left unpublished. Its
// signature is lease.Options.OnChange's. It does not block.
func (l *Loop) LeaseChanged(name site.Name, gen uint64, owned bool) {
	w, ok := l.worker(name)
	if !ok {
		return
	}
	if owned {
		w.log.Debug("site lease taken: syncing", "generation", gen)
		w.request(func() { l.wantAll(w) })
		return
	}
	w.mu.Lock()
	cancel := w.cancelRun
	w.mu.Unlock()
	if cancel != nil {
		w.log.Warn("site lease lost: abandoning the run under way")
		cancel(ErrLeaseLost)
	}
}

// Busy reports whether a run of site name is under way: a lease handed
// back while idle costs no build (lease.Options.Busy).
func (l *Loop) Busy(name site.Name) bool {
	w, ok := l.worker(name)
	if !ok {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cancelRun != nil
}

// claim reports whether w's site is this process's to work on, first
// stamping the site's pointers with a newly taken lease's generation, so
// a previous owner can no longer publish.
func (l *Loop) claim(ctx context.Context, w *worker) (bool, error) {
	if l.opts.Owner == nil {
		return true, nil
	}
	gen, ok := l.opts.Owner.Owns(w.spec.Name)
	if !ok {
		w.log.Debug("not syncing", "reason", "another builder holds the site's lease")
		return false, nil
	}
	if gen == w.stamped {
		return true, nil
	}
	if err := l.opts.Publisher.Stamp(ctx, w.spec.Name, gen); err != nil {
		err = fmt.Errorf("fencing the previous owner: %w", err)
		l.fail(w, site.Production, "", err)
		return false, err
	}
	w.stamped = gen
	return true, nil
}

// leaseLost marks err as superseded when ctx ended because the site's
// lease was lost: the run was abandoned, not failed.
func leaseLost(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), ErrLeaseLost) {
		return fault.Superseded(fmt.Errorf("%w: %w", ErrLeaseLost, err))
	}
	return err
}
