// Package journal records this server's recent deploy attempts as they
// run: their named steps and how long each took, outcome, and a build log that can be read
// while it grows. The bucket keeps finished deploys; the journal is what
// only the building server knows: builds under way and failures.
package journal

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/site"
)

// Options configure a Journal.
type Options struct {
	// Keep is how many attempts are kept per site (default 50).
	Keep int
	// MaxLog caps one attempt's log (default 2 MiB; the build's own
	// output is capped before it gets here).
	MaxLog int
	// OnFinish, when set, sees every attempt once, as it ends (metrics).
	OnFinish func(Snapshot)
	Now      func() time.Time
}

// Journal is safe for concurrent use.
type Journal struct {
	opts Options
	mu   sync.Mutex
	// sites holds each site's attempts, oldest first.
	sites map[site.Name][]*Entry
	seq   uint64
}

// New returns an empty Journal.
func New(opts Options) *Journal {
	if opts.Keep <= 0 {
		opts.Keep = 50
	}
	if opts.MaxLog <= 0 {
		opts.MaxLog = 2 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Journal{opts: opts, sites: map[site.Name][]*Entry{}}
}

// Start records a new attempt to deploy commit on channel c of site s.
func (j *Journal) Start(s site.Name, c site.Channel, commit site.Commit) *Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	e := &Entry{j: j, changed: make(chan struct{}), snap: Snapshot{
		Seq: j.seq, Site: s, Channel: c, Commit: commit, State: site.OutcomeBuilding, Started: j.opts.Now(),
	}}
	list := append(j.sites[s], e)
	if len(list) > j.opts.Keep {
		// Drop the oldest finished attempt; one still running stays.
		for i, old := range list {
			if old.Done() {
				list = slices.Delete(list, i, i+1)
				break
			}
		}
	}
	j.sites[s] = list
	return e
}

// Entries returns site s's attempts, newest first.
func (j *Journal) Entries(s site.Name) []Snapshot {
	j.mu.Lock()
	list := slices.Clone(j.sites[s])
	j.mu.Unlock()
	out := make([]Snapshot, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, list[i].Snapshot())
	}
	return out
}

// Find returns the newest attempt of site s that made (or would have
// made) deploy id.
func (j *Journal) Find(s site.Name, id site.DeployID) (*Entry, bool) {
	j.mu.Lock()
	list := slices.Clone(j.sites[s])
	j.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Snapshot().Deploy == id {
			return list[i], true
		}
	}
	return nil, false
}

// Forget drops a removed site's attempts.
func (j *Journal) Forget(s site.Name) {
	j.mu.Lock()
	delete(j.sites, s)
	j.mu.Unlock()
}

// Snapshot is an attempt at one moment.
type Snapshot struct {
	Seq     uint64
	Site    site.Name
	Channel site.Channel
	Commit  site.Commit
	Subject string
	Author  string
	// CommitTime is the commit's author time.
	CommitTime time.Time
	// Deploy is the deploy's ID once the build key is known.
	Deploy site.DeployID
	// State is OutcomeBuilding until the attempt ends OutcomeLive,
	// OutcomeFailed or OutcomeSuperseded.
	State  site.Outcome
	Reused bool
	Error  string
	// Kind says what a failure asks for: fault.KindStalled is the site's
	// to fix (not retried until a new commit), fault.KindTransient is
	// retried; "" until the attempt fails.
	Kind     fault.Kind
	Started  time.Time
	Finished time.Time
	// Steps are the steps run so far, in order, each with how long it
	// took; a failed attempt's last step is the one that failed.
	Steps []Step
	// Queue is the part of the build step spent waiting for a build slot.
	Queue time.Duration
	// Files and BytesUploaded describe the upload, when there was one.
	Files         int
	BytesUploaded int64
	LogBytes      int
}

// Step is one named step of an attempt (see reconcile's deploy steps).
type Step struct {
	Name string
	Took time.Duration
}

// The names of a deploy's steps, in the order they run (reconcile's
// step lists); Timings are made of them.
const (
	StepFetch   = "fetch"   // git fetch and the commit's details
	StepSources = "sources" // the site's tree and netlify.toml
	StepKey     = "key"     // the build key, so the deploy ID
	StepBuild   = "build"   // reuse an identical deploy, or export and build
	StepUpload  = "upload"  // write the built deploy to the store
	StepRules   = "rules"   // check the deploy's rules
	StepPublish = "publish" // flip the channel's pointer
	StepReport  = "report"  // status, write-back, forge and notifications
)

// Took is how long step name took, zero when it did not run.
func (s Snapshot) Took(name string) time.Duration {
	var d time.Duration
	for _, st := range s.Steps {
		if st.Name == name {
			d += st.Took
		}
	}
	return d
}

// Timings are the phases people have always been shown; zero when not
// run.
type Timings struct {
	Queue, Fetch, Build, Upload, Publish time.Duration
}

// Timings sums the steps into phases: Build is the build step without
// its wait for a slot, zero for a reused deploy (nothing was built).
func (s Snapshot) Timings() Timings {
	t := Timings{Queue: s.Queue, Fetch: s.Took(StepFetch), Upload: s.Took(StepUpload), Publish: s.Took(StepPublish)}
	if !s.Reused {
		t.Build = max(0, s.Took(StepBuild)-s.Queue)
	}
	return t
}

// Total is the attempt's wall time so far, or in all when it ended.
func (s Snapshot) Total(now time.Time) time.Duration {
	if !s.Finished.IsZero() {
		return s.Finished.Sub(s.Started)
	}
	return now.Sub(s.Started)
}

// Entry is one attempt, written by the deploy that runs it.
type Entry struct {
	j       *Journal
	mu      sync.Mutex
	snap    Snapshot
	log     []byte
	dropped int
	changed chan struct{} // closed and replaced on every change
}

// Update edits the attempt's fields.
func (e *Entry) Update(f func(*Snapshot)) {
	e.mu.Lock()
	f(&e.snap)
	e.notify()
	e.mu.Unlock()
}

// Write appends to the log; it never fails (over the cap, text is
// counted and dropped).
func (e *Entry) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	room := e.j.opts.MaxLog - len(e.log)
	switch {
	case room >= len(p):
		e.log = append(e.log, p...)
	case room > 0:
		e.log = append(e.log, p[:room]...)
		e.dropped += len(p) - room
	default:
		e.dropped += len(p)
	}
	e.notify()
	return len(p), nil
}

// Step records that step name ran, taking took.
func (e *Entry) Step(name string, took time.Duration) {
	e.Update(func(s *Snapshot) { s.Steps = append(s.Steps, Step{Name: name, Took: took}) })
}

// Logf appends one line to the log.
func (e *Entry) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if line == "" || line[len(line)-1] != '\n' {
		line += "\n"
	}
	e.Write([]byte(line)) //nolint:errcheck // never fails
}

// Finish ends the attempt in state with err (nil for success), whose
// fault.Kind it records. Only the first call counts.
func (e *Entry) Finish(state site.Outcome, err error) {
	e.mu.Lock()
	if !e.snap.Finished.IsZero() {
		e.mu.Unlock()
		return
	}
	e.snap.State, e.snap.Finished = state, e.j.opts.Now()
	if err != nil {
		e.snap.Error, e.snap.Kind = err.Error(), fault.KindOf(err)
	}
	if e.dropped > 0 {
		e.log = fmt.Appendf(e.log, "… log truncated: %d more bytes\n", e.dropped)
		e.dropped = 0
	}
	snap := e.snap
	snap.Steps = slices.Clone(snap.Steps)
	snap.LogBytes = len(e.log)
	e.notify()
	e.mu.Unlock()
	if e.j.opts.OnFinish != nil {
		e.j.opts.OnFinish(snap)
	}
}

// Done reports whether the attempt has ended.
func (e *Entry) Done() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.snap.Finished.IsZero()
}

// Snapshot returns the attempt as it is now.
func (e *Entry) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap
	s.Steps = slices.Clone(s.Steps)
	s.LogBytes = len(e.log)
	return s
}

// Log returns a copy of the log so far, saying so when text was dropped.
func (e *Entry) Log() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Clone(e.log)
	if e.dropped > 0 {
		out = fmt.Appendf(out, "… log truncated: %d more bytes so far\n", e.dropped)
	}
	return out
}

// Read returns the log from byte offset off to the end of its last whole
// line (all of it once the attempt ended), whether the attempt has ended,
// and a channel closed at the next change, for followers.
func (e *Entry) Read(off int) (text []byte, next int, done bool, changed <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	done = !e.snap.Finished.IsZero()
	off = max(0, min(off, len(e.log)))
	end := len(e.log)
	if !done {
		// Whole lines only, so a follower never prints half a line twice.
		for end > off && e.log[end-1] != '\n' {
			end--
		}
	}
	return slices.Clone(e.log[off:end]), end, done, e.changed
}

// notify wakes followers; the caller holds e.mu.
func (e *Entry) notify() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// Discard forgets an attempt that turned out not to be one (a pull
// request head too old to preview).
func (j *Journal) Discard(e *Entry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := e.Snapshot().Site
	j.sites[s] = slices.DeleteFunc(j.sites[s], func(x *Entry) bool { return x == e })
}
