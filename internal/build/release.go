package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sitehost/sitehost/internal/hugorelease"
)

// Releases fetches the Hugo releases sites ask for (hugorelease.Store).
type Releases interface {
	Hugo(ctx context.Context, version string) (hugorelease.Binary, error)
}

// Release is a fetched Hugo a build runs.
type Release = hugorelease.Binary

// release fetches (or finds cached) the Hugo release v and says so in the
// build log.
func (b *Builder) release(ctx context.Context, req Request, v string) (Release, error) {
	if b.opts.Releases == nil {
		return Release{}, &UserError{Problems: []Problem{{Message: fmt.Sprintf("the site asks for Hugo v%s, but this server runs only its compiled-in v%s (no hugo_releases)", v, HugoVersion)}}}
	}
	r, err := b.opts.Releases.Hugo(ctx, v)
	if err != nil {
		return r, err
	}
	if req.Log != nil {
		if r.Fetched {
			fmt.Fprintf(req.Log, "Fetched Hugo v%s from %s in %s (sha256 %s, verified against its checksums file)\n", r.Version, r.URL, r.Took.Round(time.Millisecond), r.SHA256)
		} else {
			fmt.Fprintf(req.Log, "Using Hugo v%s fetched before (sha256 %s)\n", r.Version, r.SHA256)
		}
	}
	return r, nil
}

// runRelease builds with a fetched Hugo, run directly in the same sandbox
// as the compiled-in child (same environment, HUGO_SECURITY expressed for
// its version, git shim, process group, timeout): first `hugo config
// mounts`, so module mounts are checked by that release's own reading of
// the config, then the build. Its verdict is its exit status; problems are
// read from what it printed.
func (b *Builder) runRelease(ctx context.Context, req Request, r Release, env []string, logw io.Writer, cacheDir string) (cmd *exec.Cmd, runErr error, problems []Problem, ok bool, err error) {
	if len(b.tools()) > 0 {
		// The site narrows the tools: its own config, read by this release.
		if env, problems, runErr = b.narrowRelease(ctx, req, r, env, logw); runErr != nil || len(problems) > 0 {
			return cmd, runErr, problems, false, nil
		}
	}
	// What the config makes Hugo read and write, in that release's own
	// reading of it: the module mounts, then resourceDir and the caches.
	// Both commands take only Hugo's global flags in older releases.
	mounts, cmd, problems, runErr := b.hugoConfig(ctx, req, r, env, logw, "config", "mounts")
	if runErr != nil || len(problems) > 0 {
		return cmd, runErr, problems, false, nil
	}
	if problems, err = mountProblems(mounts, req.Src); err != nil || len(problems) > 0 {
		return cmd, nil, problems, false, err
	}
	conf, cmd, problems, runErr := b.hugoConfig(ctx, req, r, env, logw, "config", "--format", "json")
	if runErr != nil || len(problems) > 0 {
		return cmd, runErr, problems, false, nil
	}
	if problems, err = configDirProblems(conf, req.Src, cacheDir); err != nil || len(problems) > 0 {
		return cmd, nil, problems, false, err
	}
	if problems = policyProblems(conf, env, r.Version); len(problems) > 0 {
		return cmd, nil, problems, false, nil
	}

	args := []string{
		"--source", req.Src,
		"--destination", req.Out,
		"--environment", req.Settings.Environment,
		"--cacheDir", cacheDir,
		"--baseURL", req.BaseURL,
		"--noBuildLock",
		"--logLevel", "info",
		"--gc", // as the compiled-in child: the kept cache holds what this build used
	}
	if req.Settings.Minify {
		args = append(args, "--minify")
	}
	cmd = command(ctx, req, env, r.Path, args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	b.opts.Logger.Debug("starting hugo build", "site", req.Site, "hugo", r.Version, "src", req.Src, "base_url", req.BaseURL)
	runErr = cmd.Run()
	if runErr == nil {
		return cmd, nil, nil, true, nil
	}
	var exit *exec.ExitError
	if errors.As(runErr, &exit) && exit.Exited() {
		// Hugo exits 255 (or 1) with its errors printed: the site's.
		problems = problemsFromLog(logw)
		if len(problems) == 0 {
			problems = []Problem{{Message: fmt.Sprintf("hugo v%s exited with status %d", r.Version, exit.ExitCode())}}
		}
	}
	return cmd, runErr, problems, false, nil
}

// maxConfigOutput bounds what a `hugo config` command may print: a site
// cannot hide a module past the end of what is read.
const maxConfigOutput = 4 << 20

// hugoConfig runs one `hugo config …` command of release r and returns
// the JSON it printed. Older releases print their warnings and errors on
// stdout too: lines outside the JSON go to the build log. A command that
// fails, or prints more than maxConfigOutput, is the site's config at
// fault: problems say what it printed.
func (b *Builder) hugoConfig(ctx context.Context, req Request, r Release, env []string, logw io.Writer, args ...string) (out []byte, cmd *exec.Cmd, problems []Problem, runErr error) {
	var stdout bytes.Buffer
	lim := &limited{w: &stdout, n: maxConfigOutput}
	cmd = command(ctx, req, env, r.Path, append(args, "--source", req.Src, "--environment", req.Settings.Environment)...)
	cmd.Stdout, cmd.Stderr = lim, logw
	runErr = cmd.Run()
	out, rest := splitJSON(stdout.Bytes())
	logw.Write(rest) //nolint:errcheck // capped never fails
	what := "hugo " + strings.Join(args, " ")
	switch {
	case ctx.Err() != nil:
		return nil, cmd, nil, runErr
	case lim.dropped:
		return nil, cmd, []Problem{{File: "hugo config", Message: fmt.Sprintf("%s printed more than %d bytes: too many modules or mounts", what, maxConfigOutput)}}, nil
	case runErr != nil:
		var exit *exec.ExitError
		if !errors.As(runErr, &exit) || !exit.Exited() {
			return nil, cmd, nil, runErr // killed: the caller decides
		}
		problems = problemsFromLog(logw)
		if len(problems) == 0 {
			problems = []Problem{{File: "hugo config", Message: fmt.Sprintf("%s (hugo v%s) exited with status %d", what, r.Version, exit.ExitCode())}}
		}
		return nil, cmd, problems, nil
	}
	return out, cmd, nil, nil
}

// splitJSON separates the JSON objects in out (each starting with "{" at
// the start of a line, as Hugo prints them) from the other lines.
func splitJSON(out []byte) (js, rest []byte) {
	in := false
	for line := range bytes.Lines(out) {
		switch {
		case in:
			js = append(js, line...)
			in = !bytes.HasPrefix(line, []byte("}"))
		case bytes.HasPrefix(line, []byte("{")):
			js = append(js, line...)
			in = !json.Valid(bytes.TrimSpace(line)) // a one-line object ends where it starts
		default:
			rest = append(rest, line...)
		}
	}
	return js, rest
}

// configDirProblems reads resourceDir and the caches' dirs from `hugo
// config --format json` and checks them (DirProblems).
func configDirProblems(out []byte, src, cacheDir string) ([]Problem, error) {
	var conf struct {
		ResourceDir string `json:"resourcedir"`
		Caches      map[string]struct {
			Dir string `json:"dir"`
		} `json:"caches"`
	}
	if err := json.Unmarshal(out, &conf); err != nil {
		return []Problem{{File: "hugo config", Message: fmt.Sprintf("reading hugo config: %v", err)}}, nil
	}
	caches := map[string]string{}
	for name, c := range conf.Caches {
		caches[name] = c.Dir
	}
	return DirProblems(src, cacheDir, conf.ResourceDir, caches), nil
}

// policyProblems checks, in `hugo config --format json`, that the release
// applies the security policy sitehost set (HUGO_SECURITY in env) over the
// site's own [security]: what each lock-down key ended up as. Releases
// before v0.115.4 let a site's config win; this catches any release that
// does, whatever its version.
func policyProblems(conf []byte, env []string, version string) []Problem {
	var want map[string]any
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HUGO_SECURITY="); ok {
			if err := json.Unmarshal([]byte(v), &want); err != nil {
				return []Problem{{Message: fmt.Sprintf("sitehost's own security policy does not parse: %v", err)}}
			}
		}
	}
	var got struct {
		Security map[string]any `json:"security"`
	}
	if err := json.Unmarshal(conf, &got); err != nil {
		return []Problem{{File: "hugo config", Message: fmt.Sprintf("reading hugo config: %v", err)}}
	}
	var problems []Problem
	for _, k := range [][2]string{{"exec", "allow"}, {"exec", "osEnv"}, {"funcs", "getenv"}, {"http", "urls"}, {"http", "methods"}} {
		w, g := list(field(want, k[0], k[1])), list(field(got.Security, k[0], strings.ToLower(k[1])))
		if !slices.Equal(w, g) {
			problems = append(problems, Problem{Message: fmt.Sprintf("hugo v%s does not apply sitehost's build sandbox: security.%s.%s is %q, not %q; refused (pin another Hugo release)", version, k[0], k[1], g, w)})
		}
	}
	return problems
}

// field is m[table][key], nil where either is missing.
func field(m map[string]any, table, key string) any {
	t, _ := m[table].(map[string]any)
	return t[key]
}

// list is a security whitelist as Hugo prints it ("none" or a list).
func list(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// since reports whether Hugo version v is at least min.
func since(v, min string) bool { return hugorelease.Compare(v, min) >= 0 }

// mountProblems checks `hugo config mounts` output (one JSON object per
// module) as hugochild checks the compiled-in Hugo's modules
// (ModuleProblems).
func mountProblems(out []byte, src string) ([]Problem, error) {
	var mods []Module
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct {
			Path   string `json:"path"`
			Dir    string `json:"dir"`
			Mounts []struct {
				Source string `json:"source"`
			} `json:"mounts"`
		}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return []Problem{{File: "hugo config", Message: fmt.Sprintf("reading hugo config mounts: %v", err)}}, nil
		}
		mod := Module{Path: m.Path, Dir: m.Dir}
		for _, mnt := range m.Mounts {
			mod.Mounts = append(mod.Mounts, mnt.Source)
		}
		mods = append(mods, mod)
	}
	return ModuleProblems(src, mods), nil
}

// logTimestamp is the date older Hugo releases print after ERROR.
var logTimestamp = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `)

// loggedErrors is Hugo's closing count of the errors it printed.
var loggedErrors = regexp.MustCompile(`^error building site: logged \d+ error`)

// problemsFromLog reads the errors a Hugo release printed: its "ERROR"
// lines, else its final "Error:" line.
func problemsFromLog(w io.Writer) []Problem {
	c, ok := w.(*capped)
	if !ok {
		return nil
	}
	var errs, final []string
	for line := range strings.SplitSeq(c.buf.String(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "ERROR "):
			msg := logTimestamp.ReplaceAllString(strings.TrimPrefix(line, "ERROR "), "")
			if !loggedErrors.MatchString(msg) { // a count of the lines above
				errs = append(errs, msg)
			}
		case strings.HasPrefix(line, "Error: "):
			final = append(final, strings.TrimPrefix(line, "Error: "))
		}
	}
	if len(errs) == 0 {
		errs = final
	}
	out := make([]Problem, 0, len(errs))
	for _, msg := range errs {
		p := ProblemFromText(msg)
		if h := SassHint(p.Message); h != "" {
			p.Message += "; " + h
		}
		out = append(out, p)
	}
	return out
}

// textPosition is a position Hugo puts in an error's text: quoted when it
// flattened a file error, bare at the start otherwise.
var textPosition = regexp.MustCompile(`"([^"]+):(\d+):(\d+)": |^(/[^:]+):(\d+):(\d+): `)

// ProblemFromText makes a Problem of one error message Hugo printed,
// taking the file position out of the text when it has one.
func ProblemFromText(msg string) Problem {
	p := Problem{Message: msg}
	if m := textPosition.FindStringSubmatch(msg); m != nil {
		file, line, col := m[1], m[2], m[3]
		if file == "" {
			file, line, col = m[4], m[5], m[6]
		}
		p.File = file
		p.Line, _ = strconv.Atoi(line)
		p.Column, _ = strconv.Atoi(col)
		p.Message = TrimPosition(msg, file)
	}
	return p
}

// TrimPosition keeps what follows file's position in Hugo's message (the
// problem carries the position itself).
func TrimPosition(msg, file string) string {
	if file == "" {
		return msg
	}
	if i := strings.LastIndex(msg, file); i >= 0 {
		rest := msg[i+len(file):]
		if j := strings.Index(rest, ": "); j >= 0 {
			return strings.TrimSpace(rest[j+2:])
		}
	}
	return msg
}

// limited writes at most n bytes to w and drops the rest, saying so.
type limited struct {
	w       io.Writer
	n       int
	dropped bool
}

func (l *limited) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		l.n -= k
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
	}
	if k < len(p) {
		l.dropped = true
	}
	return len(p), nil
}
