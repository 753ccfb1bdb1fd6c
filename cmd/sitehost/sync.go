package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// progressInterval is how often `sitehost sync` asks the server how the
// sync is going, when stderr is a terminal.
const progressInterval = 500 * time.Millisecond

// cmdSync asks the server to reconcile a site now, waits until it has and
// prints the site's channels; exit 1 when production failed.
func (con console) cmdSync(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := clientFlags("sync", "<site> [--json] [--timeout 30m] [--no-wait]", stderr)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the sync")
	noWait := fs.Bool("no-wait", false, "only ask for the sync; do not wait for it")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError{err}
	}
	if len(pos) != 1 {
		return usageError(fs, "want one <site>, got %d arguments", len(pos))
	}
	c, err := newClient(*path, getenv)
	if err != nil {
		return err
	}
	name := pos[0]
	if *noWait {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		var acc api.SyncAccepted
		raw, err := c.post(ctx, sitePath(name, "sync"), &acc)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, raw)
		}
		_, err = fmt.Fprintln(stdout, acc.Message)
		return err
	}

	syncCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	stop := func() {}
	if con.isTerminal(stderr) {
		stop = con.progress(syncCtx, c, name, stderr)
	}
	var s api.Site
	raw, err := c.post(syncCtx, sitePath(name, "sync")+"?wait=true", &s)
	stop()
	if err != nil {
		if ctx.Err() == nil && errors.Is(syncCtx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: still syncing after %s; the server carries on (sitehost status %s, sitehost logs -f %s)", name, *timeout, name, name)
		}
		return err
	}
	if *asJSON {
		err = printJSON(stdout, raw)
	} else {
		err = statusTable(stdout, []api.Site{s})
	}
	if err != nil {
		return err
	}
	if s.State == site.Failed {
		at := ""
		if s.FailedAt != "" {
			at = " at " + s.FailedAt.Short()
		}
		fmt.Fprintf(stderr, "%s: production failed%s: %s\n", name, at, s.Error)
		return exitError{fmt.Errorf("%s: production failed", name)}
	}
	return nil
}

var spinner = []rune(`|/-\`)

// progress draws, on one line of w, how the sync of a site is going until
// stop is called: the build under way, else the site's state.
func (con console) progress(ctx context.Context, c *client, name string, w io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := con.now()
	go func() {
		defer close(done)
		tools := map[site.DeployID]string{}
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		line, frame := "", 0
		for {
			select {
			case <-ctx.Done():
				if line != "" {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case <-tick.C:
			}
			if l := con.progressLine(ctx, c, name, start, tools); l != "" {
				line = l
			}
			if line != "" && ctx.Err() == nil {
				fmt.Fprintf(w, "\r%c %s\x1b[K", spinner[frame%len(spinner)], line)
				frame++
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// progressLine says what the sync of a site is doing, e.g.
// `blog: building 1a2b3c4 "Fix typo" (hugo) 12s` or `blog: Progressing
// 3s`; "" when the server did not say.
func (con console) progressLine(ctx context.Context, c *client, name string, start time.Time, tools map[site.DeployID]string) string {
	var list api.DeployList
	if _, err := c.get(ctx, sitePath(name, "deploys")+"?limit=1", &list); err == nil && len(list.Deploys) > 0 && list.Deploys[0].State == site.OutcomeBuilding {
		d := list.Deploys[0]
		tool, ok := tools[d.ID]
		if !ok {
			var detail api.DeployDetail
			if _, err := c.get(ctx, sitePath(name, "deploys", string(d.ID)), &detail); err == nil {
				tools[d.ID] = detail.Build.Tool
				tool = detail.Build.Tool
			}
		}
		if tool != "" {
			tool = " (" + tool + ")"
		}
		since := start
		if !d.Created.IsZero() {
			since = d.Created
		}
		return fmt.Sprintf("%s: building %s %q%s %s", name, short(d.Commit.SHA), oneLine(d.Commit.Subject, 50), tool, elapsed(con.now().Sub(since)))
	}
	var s api.Site
	if _, err := c.get(ctx, sitePath(name), &s); err != nil {
		return ""
	}
	return fmt.Sprintf("%s: %s %s", name, s.State, elapsed(con.now().Sub(start)))
}

// elapsed is a duration in whole seconds: "12s", "3m07s".
func elapsed(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
}
