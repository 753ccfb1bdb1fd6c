package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/site"
)

// cmdLogs prints the build log of a deploy, the newest one by default;
// with -f it follows the log until the build ends.
func (con console) cmdLogs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, path := clientFlags("logs", "<site> [deploy] [-f] [--json]", stderr)
	follow := fs.Bool("f", false, "follow the log until the build ends; exit 1 when it failed")
	asJSON := fs.Bool("json", false, `print {"site","deploy","state","log"}; with -f, one JSON object per line and event`)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitError{err}
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError(fs, "want <site> and at most one deploy, got %d arguments", len(pos))
	}
	c, err := newClient(*path, getenv)
	if err != nil {
		return err
	}
	name := pos[0]
	var id string
	if len(pos) == 2 {
		id = pos[1]
	} else if id, err = newestDeploy(ctx, c, name); err != nil {
		return err
	}
	logPath := sitePath(name, "deploys", id, "log")
	if *follow {
		out := &logPrinter{w: stdout, json: *asJSON}
		end, err := con.followLog(ctx, c, logPath, out)
		if err != nil {
			return err
		}
		if err := out.end(end); err != nil {
			return err
		}
		if end.State == site.OutcomeFailed {
			fmt.Fprintf(stderr, "%s: deploy %s failed: %s\n", name, id, end.Error)
			return exitError{fmt.Errorf("deploy %s failed", id)}
		}
		return nil
	}

	text, state, err := readLog(ctx, c, logPath)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(struct {
			Site   string       `json:"site"`
			Deploy string       `json:"deploy"`
			State  site.Outcome `json:"state"`
			Log    string       `json:"log"`
		}{name, id, state, text}, "", "  ")
		if err != nil {
			return err
		}
		return printJSON(stdout, b)
	}
	if _, err := io.WriteString(stdout, withNewline(text)); err != nil {
		return err
	}
	if state == site.OutcomeBuilding {
		fmt.Fprintf(stderr, "(deploy %s is still building: sitehost logs -f %s %s follows it)\n", id, name, id)
	}
	return nil
}

// newestDeploy is the ID of a site's newest deploy.
func newestDeploy(ctx context.Context, c *client, name string) (string, error) {
	var list api.DeployList
	if _, err := c.get(ctx, sitePath(name, "deploys")+"?limit=1", &list); err != nil {
		return "", err
	}
	if len(list.Deploys) == 0 {
		return "", fmt.Errorf("no deploys of %s yet", name)
	}
	return string(list.Deploys[0].ID), nil
}

// readLog reads the log so far as text, and the deploy's state.
func readLog(ctx context.Context, c *client, path string) (text string, state site.Outcome, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, path, http.Header{"Accept": {"text/plain"}})
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", "", fmt.Errorf("reading %s: %w", resp.Request.URL, err)
	}
	return string(b), site.Outcome(resp.Header.Get(api.LogState)), nil
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// logPrinter writes a followed log as text, or as JSON lines.
type logPrinter struct {
	w    io.Writer
	json bool
	last string // the last text written, to end the output with a newline
}

func (p *logPrinter) text(s string) error {
	if p.json {
		return p.line(api.LogChunk{Text: s})
	}
	p.last = s
	_, err := io.WriteString(p.w, s)
	return err
}

func (p *logPrinter) end(e api.LogEnd) error {
	if p.json {
		return p.line(e)
	}
	if p.last != "" && !strings.HasSuffix(p.last, "\n") {
		_, err := io.WriteString(p.w, "\n")
		return err
	}
	return nil
}

func (p *logPrinter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(p.w, "%s\n", b)
	return err
}

// errStreamClosed is a log stream that ended before its end event.
var errStreamClosed = errors.New("the log stream closed before the build ended")
