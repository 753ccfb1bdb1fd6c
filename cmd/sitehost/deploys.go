package main

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// cmdDeploys prints a site's deploy history, newest first.
func (con console) cmdDeploys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := clientFlags("deploys", "<site> [--channel C] [--limit N] [--json]", stderr)
	channel := fs.String("channel", "", "only deploys built for this channel (production, pr-<N>, branch-<slug>)")
	limit := fs.Int("limit", 20, "how many deploys, newest first (the server allows up to 100)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError{err}
	}
	if len(pos) != 1 {
		return usageError(fs, "want one <site>, got %d arguments", len(pos))
	}
	if *limit < 1 {
		return usageError(fs, "--limit %d: want at least 1", *limit)
	}
	c, err := newClient(*path, getenv)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *channel != "" {
		q.Set("channel", *channel)
	}
	var list api.DeployList
	raw, err := c.get(ctx, sitePath(pos[0], "deploys")+"?"+q.Encode(), &list)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, raw)
	}
	now := con.now()
	rows := [][]string{{"ID", "CHANNEL", "EVENT", "STATE", "COMMIT", "SUBJECT", "AUTHOR", "WHEN", "TOOK"}}
	for _, d := range list.Deploys {
		rows = append(rows, []string{string(d.ID), string(d.Channel), deployEvent(d), deployState(d),
			short(d.Commit.SHA), dash(oneLine(d.Commit.Subject, 50)), dash(oneLine(d.Commit.Author, 30)),
			ago(now, deployWhen(d)), took(time.Duration(d.Timings.Total) * time.Millisecond)})
	}
	return printTable(stdout, rows)
}

// deployEvent is what happened to the channel: built, reused (a revert),
// rolled back, repaired; "-" for an attempt that did not go live.
func deployEvent(d api.Deploy) string {
	switch {
	case d.Event != "":
		return strings.ReplaceAll(d.Event, "_", " ")
	case d.Reused:
		return "reused"
	}
	return "-"
}

// deployWhen is when an event happened, or when an attempt started: a
// revert happens long after the deploy it reuses was created.
func deployWhen(d api.Deploy) time.Time {
	if d.Event != "" && !d.PublishedAt.IsZero() {
		return d.PublishedAt
	}
	return d.Created
}

// deployState is a deploy's state, saying where a live one is served:
// "live (production, pr-3)".
func deployState(d api.Deploy) string {
	if d.State != site.OutcomeLive || len(d.LiveOn) == 0 {
		return string(d.State)
	}
	on := make([]string, len(d.LiveOn))
	for i, c := range d.LiveOn {
		on[i] = string(c)
	}
	return string(d.State) + " (" + strings.Join(on, ", ") + ")"
}
