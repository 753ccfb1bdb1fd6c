package main

import (
	"github.com/sitehost/sitehost/internal/forge"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// statusReporter turns the loop's deploy reports into forge commit
// statuses for the sites that configure `forge:`, with the clients of the
// live runtime.
type statusReporter struct {
	reporter *forge.Reporter
	rt       func() *configRuntime
}

var _ reconcile.Reporter = statusReporter{}

// Report never blocks: the forge reporter queues and retries.
func (r statusReporter) Report(name site.Name, rep reconcile.Report) {
	c, ok := r.rt().forges[name]
	if !ok {
		return
	}
	state, ok := forge.StateOf(rep.State)
	if !ok {
		return
	}
	r.reporter.Report(c, forge.Status{
		Commit: rep.Commit, State: state, TargetURL: rep.URL,
		Description: rep.Message, Context: "sitehost/" + string(rep.Channel),
	})
}
