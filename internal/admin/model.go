package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/journal"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/reconcile"
	"github.com/sitehost/sitehost/internal/redact"
	"github.com/sitehost/sitehost/internal/site"
)

// model answers questions about sites and deploys from the loop's status,
// the store and the journal; the JSON API and the dashboard both read it.
type model struct {
	opts Options

	mu        sync.Mutex
	summaries map[summaryKey]summary // manifests are immutable: read once
	lives     map[liveKey]api.Commit // described by a pointer's event
}

type liveKey struct {
	site    site.Name
	channel site.Channel
	commit  site.Commit
	deploy  site.DeployID
}

type summaryKey struct {
	site site.Name
	id   site.DeployID
}

// summary is what lists need of a manifest, without its file list.
type summary struct {
	commit  api.Commit
	created time.Time
	build   manifest.BuildSummary
}

// maxSummaries bounds the summary cache; any entry may go.
const maxSummaries = 4096

// maxHistory bounds one history answer.
const maxHistory = 100

func newModel(opts Options) *model {
	return &model{opts: opts, summaries: map[summaryKey]summary{}, lives: map[liveKey]api.Commit{}}
}

// Sites is every configured site, in config order.
func (m *model) Sites(ctx context.Context) ([]api.Site, error) {
	out := []api.Site{}
	if m.opts.List != nil {
		// One config's sites, whatever the loop is doing: a reload swaps
		// the list whole, so an answer never mixes two configs.
		for _, info := range m.opts.List() {
			st, ok := m.opts.Loop.SiteStatus(info.Name)
			if !ok {
				st = reconcile.Status{Site: info.Name}
			}
			out = append(out, m.siteWith(ctx, info, st))
		}
		return out, nil
	}
	for _, st := range m.opts.Loop.Status() {
		out = append(out, m.site(ctx, st))
	}
	return out, nil
}

// Site is one site; api.ErrNotFound for a name not configured.
func (m *model) Site(ctx context.Context, name site.Name) (api.Site, error) {
	if m.opts.List != nil && m.opts.SiteInfo != nil {
		// The config decides what exists, as for the list.
		info, ok := m.opts.SiteInfo(name)
		if !ok {
			return api.Site{}, fmt.Errorf("no site named %q: %w", name, api.ErrNotFound)
		}
		st, ok := m.opts.Loop.SiteStatus(name)
		if !ok {
			st = reconcile.Status{Site: name}
		}
		return m.siteWith(ctx, info, st), nil
	}
	st, ok := m.opts.Loop.SiteStatus(name)
	if !ok {
		return api.Site{}, fmt.Errorf("no site named %q: %w", name, api.ErrNotFound)
	}
	return m.site(ctx, st), nil
}

func (m *model) info(name site.Name) SiteInfo {
	if m.opts.SiteInfo != nil {
		info, _ := m.opts.SiteInfo(name)
		return info
	}
	for _, s := range m.opts.Sites {
		if s.Name == name {
			return s
		}
	}
	return SiteInfo{}
}

func (m *model) site(ctx context.Context, st reconcile.Status) api.Site {
	return m.siteWith(ctx, m.info(st.Site), st)
}

func (m *model) siteWith(ctx context.Context, info SiteInfo, st reconcile.Status) api.Site {
	out := api.Site{
		Name: st.Site, Repo: redact.Credentials(info.Repo), Ref: info.Ref, Domains: info.Domains, URL: info.URL,
		State: st.State, Desired: st.Desired, LiveCommit: st.LiveCommit, LiveDeploy: st.LiveDeploy,
		Error: st.Error, FailedAt: st.FailedAt, LastSync: st.LastSync,
		Builds: st.Builds, Reused: st.Reused, Repairs: st.Repairs,
	}
	if out.Domains == nil {
		out.Domains = []string{}
	}
	if out.State == "" {
		out.State = site.OutOfSync
	}
	names := make([]site.Channel, 0, len(st.Channels)+1)
	for c := range st.Channels {
		if c != site.Production {
			names = append(names, c)
		}
	}
	slices.Sort(names)
	prod, ok := st.Channels[site.Production]
	if !ok {
		prod = reconcile.ChannelStatus{State: out.State, Desired: st.Desired, LiveCommit: st.LiveCommit,
			LiveDeploy: st.LiveDeploy, Error: st.Error, FailedAt: st.FailedAt, LastSync: st.LastSync}
	}
	if prod.URL == "" {
		prod.URL = info.URL
	}
	out.Channels = append(out.Channels, m.channel(ctx, st.Site, site.Production, prod))
	for _, c := range names {
		out.Channels = append(out.Channels, m.channel(ctx, st.Site, c, st.Channels[c]))
	}
	if m.opts.Certificate != nil {
		for _, d := range out.Domains {
			out.Certificates = append(out.Certificates, m.opts.Certificate(d))
		}
	}
	return out
}

func (m *model) channel(ctx context.Context, s site.Name, c site.Channel, cs reconcile.ChannelStatus) api.Channel {
	ch := api.Channel{Name: c, State: cs.State, URL: cs.URL, Desired: cs.Desired, LiveCommit: cs.LiveCommit,
		LiveDeploy: cs.LiveDeploy, Error: cs.Error, FailedAt: cs.FailedAt, LastSync: cs.LastSync}
	if cs.LiveDeploy != "" {
		if live, ok := m.liveCommit(ctx, s, c, cs.LiveCommit, cs.LiveDeploy); ok {
			ch.Live = &live
		}
		if sum, err := m.summary(ctx, s, cs.LiveDeploy); err == nil {
			ch.Hugo, ch.Sandbox = sum.build.Hugo, sum.build.Sandbox
		}
	}
	return ch
}

// liveCommit describes the commit a channel is live at: the pointer's,
// which after a revert is the revert and not the commit the deploy was
// built from. The deploy's manifest describes its own commit; another is
// described by the pointer's event for it, else by its SHA alone.
func (m *model) liveCommit(ctx context.Context, s site.Name, c site.Channel, commit site.Commit, id site.DeployID) (api.Commit, bool) {
	sum, err := m.summary(ctx, s, id)
	switch {
	case err == nil && (commit == "" || sum.commit.SHA == commit):
		return sum.commit, true
	case err != nil && !errors.Is(err, manifest.ErrNotFound), commit == "":
		return api.Commit{}, false // the store cannot say
	}
	k := liveKey{s, c, commit, id}
	m.mu.Lock()
	live, ok := m.lives[k]
	m.mu.Unlock()
	if ok {
		return live, true
	}
	live = api.Commit{SHA: commit}
	ptr, err := m.opts.Deploys.Pointer(ctx, s, c)
	if err != nil {
		return api.Commit{}, false
	}
	for _, ev := range ptr.Events {
		if ev.Commit == commit && ev.Deploy == id && ev.Info.Subject != "" {
			live = api.Commit{SHA: commit, Subject: ev.Info.Subject, Author: ev.Info.Author, Time: ev.Info.Time}
			m.mu.Lock()
			if len(m.lives) >= maxSummaries {
				clear(m.lives)
			}
			m.lives[k] = live
			m.mu.Unlock()
			break
		}
	}
	return live, true
}

// summary reads a deploy's summary, once.
func (m *model) summary(ctx context.Context, s site.Name, id site.DeployID) (summary, error) {
	k := summaryKey{s, id}
	m.mu.Lock()
	sum, ok := m.summaries[k]
	m.mu.Unlock()
	if ok {
		return sum, nil
	}
	man, err := m.opts.Deploys.Manifest(ctx, s, id)
	if err != nil {
		return summary{}, err
	}
	sum = summaryOf(man)
	m.mu.Lock()
	if len(m.summaries) >= maxSummaries {
		for k := range m.summaries {
			delete(m.summaries, k)
			break
		}
	}
	m.summaries[k] = sum
	m.mu.Unlock()
	return sum, nil
}

func summaryOf(man *manifest.Manifest) summary {
	return summary{
		commit:  api.Commit{SHA: man.Commit, Subject: man.Info.Subject, Author: man.Info.Author, Time: man.Info.Time},
		created: man.Created, build: man.Build,
	}
}

// item is a history entry being assembled.
type item struct {
	d       api.Deploy
	journal bool // timings came from an attempt of this server
	live    bool // a deploy from before events that a channel serves
}

func (it *item) at() time.Time {
	if it.d.PublishedAt.After(it.d.Created) {
		return it.d.PublishedAt
	}
	return it.d.Created
}

// eventKey finds the event an attempt of this server made.
type eventKey struct {
	channel site.Channel
	deploy  site.DeployID
	commit  site.Commit
}

// Deploys is site name's history, newest first: what happened to each
// channel as its pointer tells it — every publish event, read from the
// store, so every replica and every restart tells the same story — and
// this server's attempts that did not go live (running, failed,
// superseded), which add timings to the events they made. A pointer
// written before events were recorded tells only which deploys it served:
// one entry for each.
func (m *model) Deploys(ctx context.Context, name site.Name, channel site.Channel, limit int) ([]api.Deploy, error) {
	if _, ok := m.opts.Loop.SiteStatus(name); !ok {
		return nil, fmt.Errorf("no site named %q: %w", name, api.ErrNotFound)
	}
	if limit <= 0 || limit > maxHistory {
		limit = maxHistory
	}
	ptrs, err := m.opts.Deploys.Channels(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading the channels of %s: %w", name, err)
	}
	live := liveOn(ptrs)
	var items []*item
	events := map[eventKey][]*item{} // newest first
	legacy := map[site.DeployID]*item{}
	for _, c := range sortedChannels(ptrs) {
		if channel != "" && c != channel {
			continue
		}
		ptr := ptrs[c]
		_, current := ptr.Current()
		named := map[site.DeployID]bool{}
		for i, ev := range ptr.Events {
			named[ev.Deploy] = true
			it := &item{d: api.Deploy{ID: ev.Deploy, Site: name, Channel: c, State: site.OutcomeReady,
				Event: string(ev.Kind), Previous: ev.Previous, Reused: ev.Kind == manifest.Reused,
				Commit:      api.Commit{SHA: ev.Commit, Subject: ev.Info.Subject, Author: ev.Info.Author, Time: ev.Info.Time},
				PublishedAt: ev.At}}
			if i == 0 && current {
				it.d.State, it.d.LiveOn = site.OutcomeLive, live[ev.Deploy]
			}
			k := eventKey{c, ev.Deploy, ev.Commit}
			events[k] = append(events[k], it)
			items = append(items, it)
		}
		history := ptr.History
		if len(history) == 0 && ptr.Deploy != "" {
			history = []site.DeployID{ptr.Deploy}
		}
		for i, id := range history {
			if named[id] {
				continue // the events tell
			}
			at := ptr.PublishedAt
			if i > 0 {
				at = time.Time{}
				if i < len(ptr.Since) {
					at = ptr.Since[i]
				}
			}
			it, ok := legacy[id]
			if !ok {
				it = &item{d: api.Deploy{ID: id, Site: name, Channel: c, State: site.OutcomeReady}}
				legacy[id] = it
				items = append(items, it)
			}
			if at.After(it.d.PublishedAt) {
				it.d.PublishedAt = at
			}
			it.live = it.live || id == ptr.Deploy && !current
		}
	}
	seen := map[site.DeployID]bool{} // deploys with an attempt listed
	for _, e := range m.opts.Journal.Entries(name) {
		if e.Deploy == "" || channel != "" && e.Channel != channel {
			continue // an attempt that failed before its deploy had an ID: the status tells
		}
		if e.State == site.OutcomeLive {
			k := eventKey{e.Channel, e.Deploy, e.Commit}
			if its := events[k]; len(its) > 0 {
				events[k] = its[1:]
				its[0].journal = true
				m.fromAttemptTimings(&its[0].d, e)
				seen[e.Deploy] = true
				continue
			}
		}
		if seen[e.Deploy] {
			continue // entries come newest first: this one is older
		}
		seen[e.Deploy] = true
		it, ok := legacy[e.Deploy]
		if !ok {
			it = &item{d: api.Deploy{ID: e.Deploy, Site: name, Channel: e.Channel, State: attemptState(e)}}
			items = append(items, it)
		}
		it.journal = true
		m.fromAttempt(&it.d, e)
	}
	for _, it := range legacy {
		if it.live && it.d.State != site.OutcomeBuilding {
			it.d.State, it.d.LiveOn = site.OutcomeLive, live[it.d.ID]
		}
	}
	slices.SortFunc(items, func(a, b *item) int {
		if c := b.at().Compare(a.at()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.d.ID, b.d.ID); c != 0 {
			return c
		}
		return site.CompareChannels(a.d.Channel, b.d.Channel)
	})
	if len(items) > limit {
		items = items[:limit]
	}
	out := make([]api.Deploy, 0, len(items))
	for _, it := range items {
		if it.d.State != site.OutcomeFailed && it.d.State != site.OutcomeBuilding && it.d.State != site.OutcomeSuperseded || it.d.Commit.Subject == "" {
			if sum, err := m.summary(ctx, name, it.d.ID); err == nil {
				// A reuse built nothing: the build's timings are another event's.
				m.fromSummary(&it.d, sum, !it.journal && it.d.Event != string(manifest.Reused))
			} else if !errors.Is(err, manifest.ErrNotFound) {
				m.opts.Logger.Warn("reading a deploy for the history", "site", name, "deploy", it.d.ID, "err", err)
			}
		}
		m.links(&it.d)
		out = append(out, it.d)
	}
	return out, nil
}

// attemptState maps an attempt's state to a deploy state.
func attemptState(e journal.Snapshot) site.Outcome {
	switch e.State {
	case site.OutcomeBuilding:
		return site.OutcomeBuilding
	case site.OutcomeFailed:
		return site.OutcomeFailed
	case site.OutcomeSuperseded:
		return site.OutcomeSuperseded
	}
	return site.OutcomeReady // live once; the pointers say whether it still is
}

// fromAttempt fills d from an attempt of this server: the newest word on
// the deploy's state, and the only record of its queue and publish times.
func (m *model) fromAttempt(d *api.Deploy, e journal.Snapshot) {
	if e.State == site.OutcomeBuilding || d.State != site.OutcomeReady {
		d.State = attemptState(e)
	}
	if e.State == site.OutcomeFailed || e.State == site.OutcomeSuperseded {
		d.Error, d.ErrorKind = e.Error, e.Kind
	}
	d.Channel, d.Reused = e.Channel, e.Reused
	d.Commit = api.Commit{SHA: e.Commit, Subject: e.Subject, Author: e.Author, Time: e.CommitTime}
	m.fromAttemptTimings(d, e)
	if e.State == site.OutcomeLive && e.Finished.After(d.PublishedAt) {
		d.PublishedAt = e.Finished
	}
}

// fromAttemptTimings fills d's timings, and its creation when the attempt
// built it, from an attempt of this server; for an event the pointer
// recorded, that is all the attempt adds.
func (m *model) fromAttemptTimings(d *api.Deploy, e journal.Snapshot) {
	if !e.Reused {
		d.Created = e.Started // a reused deploy was created when it was built: its manifest says
	}
	if d.Commit.SHA == e.Commit && d.Commit.Subject == "" {
		d.Commit = api.Commit{SHA: e.Commit, Subject: e.Subject, Author: e.Author, Time: e.CommitTime}
	}
	t := e.Timings()
	d.Timings = api.Timings{
		Queue: ms(t.Queue), Fetch: ms(t.Fetch), Build: ms(t.Build),
		Upload: ms(t.Upload), Publish: ms(t.Publish), Total: ms(e.Total(m.now())),
	}
	d.Steps = make([]api.Step, 0, len(e.Steps))
	for _, s := range e.Steps {
		d.Steps = append(d.Steps, api.Step{Name: s.Name, Took: ms(s.Took)})
	}
}

// fromSummary fills d from its manifest; with timings, also the phases
// the manifest recorded (a deploy this server did not make).
func (m *model) fromSummary(d *api.Deploy, sum summary, timings bool) {
	// An event's commit may be another than the deploy was built from (a
	// revert): only the same commit is described by the manifest.
	if d.Commit.SHA == "" || d.Commit.SHA == sum.commit.SHA && d.Commit.Subject == "" {
		d.Commit = sum.commit
	}
	if d.Created.IsZero() {
		d.Created = sum.created
	}
	if timings {
		b := sum.build
		d.Timings = api.Timings{Queue: ms(b.Queue), Fetch: ms(b.Fetch), Build: ms(b.Duration), Upload: ms(b.Upload)}
		d.Timings.Total = d.Timings.Queue + d.Timings.Fetch + d.Timings.Build + d.Timings.Upload
	}
}

func (m *model) links(d *api.Deploy) {
	d.LogURL = fmt.Sprintf("%s/sites/%s/deploys/%s/log", api.Prefix, d.Site, d.ID)
	if m.opts.Permalink != nil && (d.State == site.OutcomeLive || d.State == site.OutcomeReady) {
		d.URL = m.opts.Permalink(d.Site, d.ID)
	}
}

func (m *model) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// liveOn maps each live deploy to the channels serving it.
func liveOn(ptrs map[site.Channel]manifest.Pointer) map[site.DeployID][]site.Channel {
	out := map[site.DeployID][]site.Channel{}
	for _, c := range sortedChannels(ptrs) {
		if id := ptrs[c].Deploy; id != "" {
			out[id] = append(out[id], c)
		}
	}
	return out
}

// sortedChannels: production first, then by name.
func sortedChannels(ptrs map[site.Channel]manifest.Pointer) []site.Channel {
	out := make([]site.Channel, 0, len(ptrs))
	for c := range ptrs {
		out = append(out, c)
	}
	slices.SortFunc(out, site.CompareChannels)
	return out
}

// Deploy is one deploy in detail: its manifest's summary, this server's
// attempt at it, and where it is live.
func (m *model) Deploy(ctx context.Context, name site.Name, id site.DeployID) (api.DeployDetail, error) {
	if _, ok := m.opts.Loop.SiteStatus(name); !ok {
		return api.DeployDetail{}, fmt.Errorf("no site named %q: %w", name, api.ErrNotFound)
	}
	man, err := m.opts.Deploys.Manifest(ctx, name, id)
	if err != nil && !errors.Is(err, manifest.ErrNotFound) {
		return api.DeployDetail{}, fmt.Errorf("reading deploy %s of %s: %w", id, name, err)
	}
	entry, attempted := m.opts.Journal.Find(name, id)
	if man == nil && !attempted {
		return api.DeployDetail{}, fmt.Errorf("no deploy %s of site %s: %w", id, name, api.ErrNotFound)
	}
	ptrs, err := m.opts.Deploys.Channels(ctx, name)
	if err != nil {
		return api.DeployDetail{}, fmt.Errorf("reading the channels of %s: %w", name, err)
	}
	out := api.DeployDetail{Deploy: api.Deploy{ID: id, Site: name, State: site.OutcomeReady}, Rules: api.Rules{Errors: []api.RuleError{}}}
	// Where it is or was live: its channel and when it last went live.
	for _, c := range sortedChannels(ptrs) {
		ptr := ptrs[c]
		if i := slices.Index(ptr.History, id); i >= 0 || ptr.Deploy == id {
			if out.Channel == "" {
				out.Channel = c
			}
			at := ptr.PublishedAt
			if i > 0 {
				at = time.Time{}
				if i < len(ptr.Since) {
					at = ptr.Since[i]
				}
			}
			if at.After(out.PublishedAt) {
				out.PublishedAt = at
			}
		}
	}
	if man != nil {
		m.fromSummary(&out.Deploy, summaryOf(man), true)
		out.Tree, out.BuildKey, out.Files, out.Bytes = man.Tree, man.BuildKey, len(man.Files), man.Bytes
		out.Build = api.Build{Tool: man.Build.Tool, Hugo: man.Build.Hugo, BaseURL: man.Build.BaseURL, MaxRSS: man.Build.MaxRSS, Sandbox: man.Build.Sandbox, Skipped: man.Build.SkippedGit}
		out.Rules.Redirects, out.Rules.Headers = len(man.Rules.Redirects), len(man.Rules.Headers)
		for _, e := range man.Rules.Errors {
			out.Rules.Errors = append(out.Rules.Errors, api.RuleError{Source: e.File, Line: e.Line, Message: e.Message})
		}
	}
	if attempted {
		snap := entry.Snapshot()
		if man == nil || out.Channel == "" { // in no channel's history
			// Never live: what became of the attempt is the state, even
			// when its upload got as far as a manifest (strict rules, a
			// newer commit, a failed pointer flip).
			out.State = attemptState(snap)
		}
		m.fromAttempt(&out.Deploy, snap)
	}
	if on := liveOn(ptrs)[id]; len(on) > 0 && out.State != site.OutcomeBuilding {
		out.State, out.LiveOn = site.OutcomeLive, on
	}
	m.links(&out.Deploy)
	return out, nil
}

// Log is a deploy's build log so far (the dashboard has its state).
func (m *model) Log(ctx context.Context, name site.Name, id site.DeployID) ([]byte, error) {
	if _, ok := m.opts.Loop.SiteStatus(name); !ok {
		return nil, fmt.Errorf("no site named %q: %w", name, api.ErrNotFound)
	}
	return m.logText(ctx, name, id)
}

// log is a deploy's build log so far, with the deploy (for its state).
func (m *model) log(ctx context.Context, name site.Name, id site.DeployID) ([]byte, api.DeployDetail, error) {
	d, err := m.Deploy(ctx, name, id)
	if err != nil {
		return nil, d, err
	}
	text, err := m.logText(ctx, name, id)
	return text, d, err
}

// logText is a deploy's build log so far. This server's latest attempt at
// the deploy has the whole story (fetch to pointer flip) and is what a
// stream follows, so it comes first; a reused deploy's attempt is followed
// by the stored log of its build; older deploys have their stored log
// (written up to the upload).
func (m *model) logText(ctx context.Context, name site.Name, id site.DeployID) ([]byte, error) {
	entry, attempted := m.opts.Journal.Find(name, id)
	if attempted && (!entry.Done() || !entry.Snapshot().Reused) {
		return entry.Log(), nil
	}
	stored, err := m.opts.Deploys.Log(ctx, name, id)
	switch {
	case err != nil && !errors.Is(err, manifest.ErrNotFound):
		return nil, fmt.Errorf("reading the log of deploy %s of %s: %w", id, name, err)
	case attempted:
		text := entry.Log()
		if len(stored) > 0 {
			text = fmt.Appendf(text, "\n--- the build log of deploy %s ---\n%s", id, stored)
		}
		return text, nil
	case err != nil:
		return nil, fmt.Errorf("deploy %s of %s has no build log: %w", id, name, api.ErrNotFound)
	}
	return stored, nil
}

// Trigger requests a sync of site name.
func (m *model) Trigger(name site.Name) error {
	if err := m.opts.Loop.Trigger(name); err != nil {
		return fmt.Errorf("no site named %q: %w", name, api.ErrNotFound)
	}
	return nil
}
