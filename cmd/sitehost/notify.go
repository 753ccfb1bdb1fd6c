package main

import (
	"time"

	"github.com/sitehost/sitehost/internal/notify"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/site"
)

// reporters hands each deploy report to several reporters.
type reporters []reconcile.Reporter

func (rs reporters) Report(name site.Name, r reconcile.Report) {
	for _, x := range rs {
		x.Report(name, r)
	}
}

// notifications turns the loop's reports into outgoing webhooks: the
// server's notifications for every site, each site's for its own, through
// the live runtime's notifier. A reload makes a new notifier; the old one
// drains in the background.
type notifications struct {
	rt func() *configRuntime
}

// Report maps a deploy report to its event: deploy started, succeeded or
// failed; preview ready or removed; rolled back.
func (ns notifications) Report(name site.Name, r reconcile.Report) {
	kind := r.Channel.Kind()
	e := notify.Event{
		Site: string(name), Channel: string(r.Channel), Commit: string(r.Commit), Deploy: string(r.Deploy),
		URL: r.URL, Message: r.Subject, PreviousDeploy: string(r.Previous), Time: time.Now().UTC(),
	}
	switch r.State {
	case site.OutcomeBuilding:
		e.Kind = notify.DeployStarted
	case site.OutcomeLive:
		switch {
		case r.Rollback:
			e.Kind = notify.RolledBack
		case kind == site.KindPullRequest:
			e.Kind = notify.PreviewReady
		default:
			e.Kind = notify.DeploySucceeded
		}
	case site.OutcomeFailed:
		e.Kind, e.Error, e.Message = notify.DeployFailed, r.Message, ""
	case site.OutcomeRemoved:
		if kind != site.KindPullRequest && kind != site.KindBranch {
			return
		}
		e.Kind, e.Message = notify.PreviewRemoved, r.Message
	default:
		return
	}
	ns.rt().notifier.Notify(e)
}
