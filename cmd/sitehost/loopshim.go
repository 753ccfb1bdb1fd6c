package main

import "github.com/sitehost/sitehost/internal/reconcile"

// TEMPORARY until reconcile.Loop.Prepare lands.
type loopChange struct {
	l     *reconcile.Loop
	specs []reconcile.Spec
}

func prepareLoop(l *reconcile.Loop, specs []reconcile.Spec) (*loopChange, error) {
	return &loopChange{l, specs}, nil
}
func (c *loopChange) Apply()   { c.l.Update(c.specs) } //nolint:errcheck // shim
func (c *loopChange) Discard() {}
