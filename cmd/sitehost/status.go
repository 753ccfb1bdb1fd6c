package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// cmdStatus prints sites, channels, live and desired commits and sync
// states, from the admin API of a running server.
func cmdStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := clientFlags("status", "[site] [--json]", stderr)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError{err}
	}
	if len(pos) > 1 {
		return usageError(fs, "one site at most, got %q", pos)
	}
	c, err := newClient(*path, getenv)
	if err != nil {
		return err
	}
	var sites []api.Site
	var cfg *api.Config
	var raw json.RawMessage
	if len(pos) == 1 {
		var s api.Site
		raw, err = c.get(ctx, sitePath(pos[0]), &s)
		sites = append(sites, s)
	} else {
		var list api.SiteList
		raw, err = c.get(ctx, api.Prefix+"/sites", &list)
		sites, cfg = list.Sites, list.Config
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, raw)
	}
	if err := statusTable(stdout, sites); err != nil {
		return err
	}
	return configRefusal(stdout, cfg)
}

// configRefusal says, under the table, that the last config offered was
// refused and why: the sites above are still the previous config's.
func configRefusal(w io.Writer, c *api.Config) error {
	if c == nil || c.Refused == nil {
		return nil
	}
	r := c.Refused
	var b strings.Builder
	fmt.Fprintf(&b, "\nconfig %s was refused (%s, step %s); %s stays live:\n", r.Version, r.At.Local().Format("2006-01-02 15:04:05"), r.Step, c.Version)
	if len(r.Problems) == 0 {
		fmt.Fprintf(&b, "  %s\n", oneLine(r.Error, 200))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  %s\n", oneLine(p, 200))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusTable prints one row per channel of each site, production first.
func statusTable(w io.Writer, sites []api.Site) error {
	rows := [][]string{{"SITE", "CHANNEL", "STATE", "LIVE", "DESIRED", "DEPLOY", "URL", "ERROR"}}
	for _, s := range sites {
		for _, ch := range channels(s) {
			rows = append(rows, []string{string(s.Name), string(ch.Name), string(ch.State),
				short(ch.LiveCommit), short(ch.Desired), dash(string(ch.LiveDeploy)), dash(ch.URL), oneLine(ch.Error, 60)})
		}
	}
	return printTable(w, rows)
}

// printTable prints rows in aligned columns, without trailing blanks.
func printTable(w io.Writer, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// channels lists a site's channels with production first; a site that
// reports none gets its production channel from the top-level fields.
func channels(s api.Site) []api.Channel {
	chs := slices.Clone(s.Channels)
	slices.SortStableFunc(chs, func(a, b api.Channel) int { return site.CompareChannels(a.Name, b.Name) })
	if len(chs) == 0 || chs[0].Name != site.Production {
		prod := api.Channel{Name: site.Production, State: s.State, URL: s.URL, Desired: s.Desired,
			LiveCommit: s.LiveCommit, LiveDeploy: s.LiveDeploy, Error: s.Error, FailedAt: s.FailedAt}
		chs = append([]api.Channel{prod}, chs...)
	}
	return chs
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
