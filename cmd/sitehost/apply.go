package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/config"
	"github.com/sitehost/sitehost/internal/notify"
	"github.com/sitehost/sitehost/internal/reconcile"
)

// configVersion names one version of the config: the sha256 of the file,
// or the config repository's commit.
type configVersion struct {
	source string // "file" or "git"
	path   string // the file, or its path in the repository
	repo   string // the config repository, credentials masked
	id     string // "sha256:<12 hex>" or the commit
}

func fileVersion(path string, data []byte) configVersion {
	sum := sha256.Sum256(data)
	return configVersion{source: "file", path: path, id: "sha256:" + hex.EncodeToString(sum[:6])}
}

// logAttrs name the version in a log line.
func (v configVersion) logAttrs() []any {
	attrs := []any{"file", v.path, "version", v.id}
	if v.repo != "" {
		attrs = append(attrs, "repo", v.repo)
	}
	return attrs
}

// errInvalid marks a config refused for what the file says (its problems
// are config.Problems): applying it again cannot succeed, unlike a
// refusal for what the machine could not do at the time (a key file not
// there yet, storage down), which is worth retrying.
var errInvalid = errors.New("invalid config")

// applyError is a refused config: the step that refused it and why.
type applyError struct {
	step string
	err  error
}

func (e *applyError) Error() string { return e.step + ": " + e.err.Error() }
func (e *applyError) Unwrap() error { return e.err }

// pending is a runtime on its way to being live: what each step prepared,
// for the later steps, the swap, or the undo.
type pending struct {
	cfg      *config.Config
	rt       *configRuntime
	change   *reconcile.Change
	notifier *notify.Notifier
}

// applyStep is one step of making a config live that can fail. Each
// prepares without changing what is live, or changes it all or nothing;
// undo reverses it when a later step fails.
type applyStep struct {
	name string
	do   func(ctx context.Context, p *pending) error
	undo func(p *pending)
}

// applySteps are, in order, the steps that can fail; certificates is last
// because it is the only one that changes something live (all or nothing).
// After them comes the swap, which cannot fail.
func (s *server) applySteps() []applyStep {
	return []applyStep{
		{name: "compile", do: func(_ context.Context, p *pending) (err error) {
			p.rt, err = compile(p.cfg, s.compileEnv())
			return err
		}},
		{name: "workers", do: func(_ context.Context, p *pending) (err error) {
			p.change, err = s.loop.Prepare(p.rt.specs)
			return err
		}, undo: func(p *pending) { p.change.Discard() }},
		{name: "notifications", do: func(_ context.Context, p *pending) error {
			p.notifier = notify.New(notify.Options{Targets: p.rt.targets, Logger: s.log})
			return nil
		}, undo: func(p *pending) { closeNotifier(p.notifier) }},
		{name: "certificates", do: func(ctx context.Context, p *pending) error {
			if s.certs == nil {
				return nil
			}
			return s.certs.Manage(ctx, p.rt.certNames)
		}},
	}
}

// apply makes cfg the running config, completely or not at all: every
// step that can fail runs first, then one swap makes the new runtime live,
// and what the old one alone had stops. On failure nothing live changed,
// the refusal is logged with the file and version and shown by the API.
func (s *server) apply(ctx context.Context, cfg *config.Config, v configVersion) error {
	s.applying.Lock()
	defer s.applying.Unlock()
	s.withRole(cfg)
	p := &pending{cfg: cfg}
	steps := s.applySteps()
	for i, st := range steps {
		err := s.inject(st.name)
		if err == nil {
			err = st.do(ctx, p)
		}
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				if steps[j].undo != nil {
					steps[j].undo(p)
				}
			}
			return s.refuse(v, &applyError{step: st.name, err: err})
		}
	}
	p.rt.version = v
	p.rt.notifier = p.notifier
	old := s.rt.Swap(p.rt)
	s.data.SetRoutes(p.rt.routes)
	p.change.Apply()
	if old != nil {
		closeNotifier(old.notifier)
		// A new primary domain is a new base URL: the site's deploys build
		// again now, not at the next poll.
		for name, domain := range p.rt.primary {
			if prev, ok := old.primary[name]; ok && prev != domain {
				s.loop.Trigger(name) //nolint:errcheck // the site was just applied: it exists
			}
		}
		for _, sc := range old.cfg.Sites {
			if _, kept := cfg.Site(sc.Name); !kept {
				s.journal.Forget(sc.Name)
			}
		}
		if changed := serverChanges(s.cfg, cfg); len(changed) > 0 {
			s.log.Warn("config applied, but these server settings only change on restart", append(v.logAttrs(), "keys", changed)...)
		}
		s.log.Info("config applied", append(v.logAttrs(), "sites", len(cfg.Sites), "changed", changedSites(old, p.rt))...)
	}
	s.configState.applied(v, len(cfg.Sites), time.Now())
	return nil
}

// inject fails a step on a test's request; nil otherwise.
func (s *server) inject(step string) error {
	if s.failStep == nil {
		return nil
	}
	return s.failStep(step)
}

// refuse logs why v was not applied, every problem on its own line, and
// records it for the API.
func (s *server) refuse(v configVersion, err error) error {
	if s.rt.Load() == nil {
		// At startup: the caller prints the problems and sitehost stops.
		return fmt.Errorf("applying %s (%s): %w", v.path, v.id, err)
	}
	probs := config.Problems(err)
	for _, p := range probs {
		s.log.Error("config rejected", append(v.logAttrs(), "problem", p.Error())...)
	}
	step := "validate"
	var ae *applyError
	if errors.As(err, &ae) {
		step = ae.step
	}
	attrs := append(v.logAttrs(), "step", step, "problems", max(len(probs), 1))
	if len(probs) == 0 {
		attrs = append(attrs, "err", err.Error())
	}
	s.log.Error("config reload refused: the running config stays", attrs...)
	var texts []string
	for _, p := range probs {
		texts = append(texts, p.Error())
	}
	s.configState.refused(v, step, err, texts, time.Now())
	return fmt.Errorf("applying %s (%s): %w", v.path, v.id, err)
}

// reloadFile parses a new version of the config and applies it. An
// invalid one is refused with every problem logged, and errInvalid in
// the error; the running config stays.
func (s *server) reloadFile(ctx context.Context, path string, data []byte) error {
	return s.reloadVersion(ctx, path, data, fileVersion(path, data))
}

func (s *server) reloadVersion(ctx context.Context, path string, data []byte, v configVersion) error {
	cfg, err := config.Parse(path, data)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalid, s.refuse(v, err))
	}
	return s.apply(ctx, cfg, v)
}

// closeNotifier delivers what a replaced notifier has queued, in the
// background: a reload never waits for outgoing webhooks.
func closeNotifier(n *notify.Notifier) {
	if n == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n.Close(ctx) //nolint:errcheck // what it could not deliver, it logged
	}()
}

// serverChanges names the server settings that differ between a and b.
// reloadableServer are the server settings compile reads, so a reload applies
// them like the sites.
var reloadableServer = map[string]bool{"notifications": true, "git": true}

func serverChanges(a, b *config.Config) []string {
	var out []string
	av, bv := reflect.ValueOf(a.Server), reflect.ValueOf(b.Server)
	for i := range av.NumField() {
		name := strings.Split(av.Type().Field(i).Tag.Get("yaml"), ",")[0]
		if !reloadableServer[name] && !reflect.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			out = append(out, "server."+name)
		}
	}
	return out
}

// configState is what the API says about the config: the version live,
// and the last one refused since it was applied.
type configState struct {
	mu  sync.Mutex
	api api.Config
}

func (c *configState) applied(v configVersion, sites int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api = api.Config{Source: v.source, Path: v.path, Repo: v.repo, Version: v.id, AppliedAt: at.UTC(), Sites: sites}
}

func (c *configState) refused(v configVersion, step string, err error, problems []string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api.Refused = &api.ConfigRefusal{Version: v.id, At: at.UTC(), Step: step, Error: err.Error(), Problems: problems}
}

func (c *configState) get() api.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.api
	if out.Refused != nil {
		r := *out.Refused
		out.Refused = &r
	}
	return out
}
