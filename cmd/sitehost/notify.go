package main

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sitehost/sitehost/internal/config"
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
// server's notifications for every site, each site's for its own. A
// reload builds a new notifier; the old one drains in the background.
type notifications struct {
	n      atomic.Pointer[notify.Notifier]
	log    *slog.Logger
	getenv func(string) string
}

func newNotifications(cfg *config.Config, getenv func(string) string, logger *slog.Logger) *notifications {
	ns := &notifications{log: logger, getenv: getenv}
	ns.setSites(cfg)
	return ns
}

// setSites starts delivering to cfg's targets.
func (ns *notifications) setSites(cfg *config.Config) {
	var targets []notify.Target
	add := func(n config.Notification, sites []string) {
		url := n.URL
		if n.URLEnv != "" {
			if url = ns.getenv(n.URLEnv); url == "" {
				ns.log.Warn("notification skipped: its url_env is not set", "env", n.URLEnv)
				return
			}
		}
		t := notify.Target{URL: url, Format: notify.Format(n.Format), Sites: sites}
		if n.SecretEnv != "" {
			if t.Secret = []byte(ns.getenv(n.SecretEnv)); len(t.Secret) == 0 {
				ns.log.Warn("notification unsigned: its secret_env is not set", "env", n.SecretEnv)
			}
		}
		for _, e := range n.Events {
			t.Events = append(t.Events, notify.Kind(e))
		}
		if err := t.Validate(); err != nil {
			ns.log.Warn("notification skipped", "err", err)
			return
		}
		targets = append(targets, t)
	}
	for _, n := range cfg.Server.Notifications {
		add(n, nil)
	}
	for _, sc := range cfg.Sites {
		for _, n := range sc.Notifications {
			add(n, []string{string(sc.Name)})
		}
	}
	old := ns.n.Swap(notify.New(notify.Options{Targets: targets, Logger: ns.log}))
	if old != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			old.Close(ctx) //nolint:errcheck // what it could not deliver, it logged
		}()
	}
}

// close delivers what is queued, within ctx.
func (ns *notifications) close(ctx context.Context) {
	ns.n.Load().Close(ctx) //nolint:errcheck // logged by the notifier
}

// Report maps a deploy report to its event: deploy started, succeeded or
// failed; preview ready or removed; rolled back.
func (ns *notifications) Report(name site.Name, r reconcile.Report) {
	preview := strings.HasPrefix(string(r.Channel), "pr-")
	e := notify.Event{
		Site: string(name), Channel: string(r.Channel), Commit: string(r.Commit), Deploy: string(r.Deploy),
		URL: r.URL, Message: r.Subject, PreviousDeploy: string(r.Previous), Time: time.Now().UTC(),
	}
	switch r.State {
	case "pending":
		e.Kind = notify.DeployStarted
	case "success":
		switch {
		case r.Rollback:
			e.Kind = notify.RolledBack
		case preview:
			e.Kind = notify.PreviewReady
		default:
			e.Kind = notify.DeploySucceeded
		}
	case "failure":
		e.Kind, e.Error, e.Message = notify.DeployFailed, r.Message, ""
	case "removed":
		if !preview && !strings.HasPrefix(string(r.Channel), "branch-") {
			return
		}
		e.Kind, e.Message = notify.PreviewRemoved, r.Message
	default:
		return
	}
	ns.n.Load().Notify(e)
}
