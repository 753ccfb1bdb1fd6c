package journal

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/fault"
	"github.com/sitehost/sitehost/internal/site"
)

func TestEntryLifecycle(t *testing.T) {
	var finished []Snapshot
	j := New(Options{OnFinish: func(s Snapshot) { finished = append(finished, s) }})
	e := j.Start("blog", site.Production, "abc")
	e.Logf("Deploying %s", "abc")
	e.Update(func(s *Snapshot) { s.Deploy = "0123456789abcdef" })
	if got, ok := j.Find("blog", "0123456789abcdef"); !ok || got != e {
		t.Fatal("Find did not return the attempt by its deploy ID")
	}
	if _, ok := j.Find("docs", "0123456789abcdef"); ok {
		t.Error("Find crossed sites")
	}
	e.Write([]byte("half a li"))
	text, next, done, _ := e.Read(0)
	if string(text) != "Deploying abc\n" || next != len(text) || done {
		t.Errorf("Read while running = %q, %d, %v; want only whole lines", text, next, done)
	}
	e.Write([]byte("ne\n"))
	e.Finish(site.OutcomeFailed, fault.Stalled(errors.New("template error")))
	e.Finish(site.OutcomeLive, nil) // only the first counts
	text, _, done, _ = e.Read(next)
	if string(text) != "half a line\n" || !done {
		t.Errorf("Read after finish = %q, %v", text, done)
	}
	s := e.Snapshot()
	if s.State != site.OutcomeFailed || s.Error != "template error" || s.Kind != fault.KindStalled || s.Finished.IsZero() {
		t.Errorf("snapshot = %+v", s)
	}
	if len(finished) != 1 || finished[0].State != site.OutcomeFailed {
		t.Errorf("OnFinish saw %+v, want the one failure", finished)
	}
}

func TestStepsAndTimings(t *testing.T) {
	j := New(Options{})
	e := j.Start("blog", site.Production, "abc")
	for _, st := range []Step{{"fetch", 10}, {"sources", 1}, {"key", 1}, {"build", 500}, {"upload", 40}, {"rules", 1}, {"publish", 3}, {"report", 1}} {
		e.Step(st.Name, st.Took)
	}
	e.Update(func(s *Snapshot) { s.Queue = 100 })
	before := e.Snapshot()
	e.Step("extra", 1) // a snapshot taken before does not change
	if len(before.Steps) != 8 || before.Steps[3] != (Step{"build", 500}) {
		t.Errorf("steps = %v", before.Steps)
	}
	want := Timings{Queue: 100, Fetch: 10, Build: 400, Upload: 40, Publish: 3}
	if got := before.Timings(); got != want {
		t.Errorf("timings = %+v, want %+v", got, want)
	}
	before.Reused = true
	if got := before.Timings(); got.Build != 0 {
		t.Errorf("a reused deploy's build time = %v, want 0", got.Build)
	}
}

func TestFollowerWakes(t *testing.T) {
	j := New(Options{})
	e := j.Start("blog", site.Production, "abc")
	_, _, _, changed := e.Read(0)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Error("follower not woken by a write")
		}
	})
	e.Logf("line")
	wg.Wait()
}

func TestKeepAndCap(t *testing.T) {
	j := New(Options{Keep: 3, MaxLog: 16})
	running := j.Start("blog", site.Production, "c0") // never finishes: must stay
	for i := 1; i <= 5; i++ {
		e := j.Start("blog", site.Production, site.Commit(fmt.Sprint("c", i)))
		e.Finish(site.OutcomeLive, nil)
	}
	got := j.Entries("blog")
	var commits []string
	for _, s := range got {
		commits = append(commits, string(s.Commit))
	}
	if strings.Join(commits, " ") != "c5 c4 c0" {
		t.Errorf("kept %v, want the newest two finished and the running one, newest first", commits)
	}
	running.Logf("0123456789abcdef0123456789")
	running.Finish(site.OutcomeLive, nil)
	if log := string(running.Log()); !strings.HasPrefix(log, "0123456789abcdef… log truncated: 11 more bytes") {
		t.Errorf("log = %q", log)
	}
	j.Discard(running)
	if n := len(j.Entries("blog")); n != 2 {
		t.Errorf("%d entries after Discard, want 2", n)
	}
}
