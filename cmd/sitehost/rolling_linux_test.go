package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/site"
)

// TestRollingRestart restarts both edges and both builders of a fleet one
// by one (SIGTERM, exit 0, a replacement on the same config and
// addresses) under a steady request load on the edges, pushing a commit
// while each builder stops: no request fails, and every commit goes live
// on every site.
//
// The client behaves like a load balancer: it sends to the edges
// round-robin, skips an edge whose /readyz fails (polled every 100 ms) and
// retries on the other edge only when a connection is refused.
func TestRollingRestart(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	repo := plainRepo(t, 2, "v1")
	const n = 6
	sites := sitesYAML(n, repo.URL())
	fb := &fleetBucket{tb: t, client: m.Client(t), bucket: bucket, n: n}
	// shutdown_delay is ten readiness polls: the client has stopped
	// sending to a stopping edge long before it drains.
	const (
		builderServer = "  role: builder\n  poll_interval: 1s\n  lease_time: 3s\n  shutdown_delay: 1s\n"
		edgeServer    = "  role: edge\n  shutdown_delay: 1s\n"
	)
	builders := []*builderProcess{
		startFleetProcess(t, m, m.Endpoint, bucket, sites, builderServer),
		startFleetProcess(t, m, m.Endpoint, bucket, sites, builderServer),
	}
	edges := []*builderProcess{
		startFleetProcess(t, m, m.Endpoint, bucket, sites, edgeServer),
		startFleetProcess(t, m, m.Endpoint, bucket, sites, edgeServer),
	}
	allLive := func(c string) func() bool { return fb.live(site.Commit(c), n) }
	// served reports whether both edges serve version v on every site.
	served := func(v string) func() bool {
		return func() bool {
			for _, e := range edges {
				for i := range n {
					code, body := getHost(e.http, fmt.Sprintf("s%02d.test", i))
					if code != http.StatusOK || !strings.Contains(body, "home "+v) {
						return false
					}
				}
			}
			return true
		}
	}
	commits := []string{strings.TrimSpace(repo.Git(repo.Work, "rev-parse", "HEAD"))}
	waitFor(t, allLive(commits[0]))
	waitFor(t, fb.spread(2))
	for _, e := range edges {
		waitFor(t, readyAt(e.admin))
	}
	waitFor(t, served("v1"))

	l := startLoad(t, n, edges)
	// roll stops p gracefully and starts its replacement, ready.
	roll := func(p *builderProcess) *builderProcess {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("process %d after SIGTERM: %v, want exit 0", p.cmd.Process.Pid, err)
		}
		q := restartFleetProcess(t, m, p)
		waitFor(t, readyAt(q.admin))
		return q
	}
	push := func(v string) {
		writePages(t, repo.Work, 2, v)
		commits = append(commits, repo.Commit(v))
	}

	push("v2") // built while the edges roll
	for i := range edges {
		edges[i] = roll(edges[i])
		l.waitServed(t, i)
	}
	waitFor(t, allLive(commits[1]))
	for i, v := range []string{"v3", "v4"} {
		// Stopped once it has started building the commit: it abandons
		// what it has not published, and its sites move.
		waitFor(t, fb.spread(2))
		push(v)
		short := site.Commit(commits[len(commits)-1]).Short()
		stopped := builders[i]
		waitFor(t, func() bool { return len(logged([]*builderProcess{stopped}, "building", short)) > 0 })
		at := time.Now()
		builders[i] = roll(stopped)
		waitFor(t, allLive(commits[len(commits)-1]))
		old := []*builderProcess{stopped}
		t.Logf("builder %d: %s live on all sites %s after its SIGTERM; it had started %d builds of it and published %d",
			i+1, v, time.Since(at).Round(10*time.Millisecond), len(logged(old, "building", short)), len(logged(old, "live", short)))
	}
	waitFor(t, fb.spread(2))
	waitFor(t, served("v4"))
	l.stop()

	t.Logf("%d requests during the rollout (%d to edge 1, %d to edge 2), %d retried after connection refused, %d failed",
		l.requests.Load(), l.perEdge[0].Load(), l.perEdge[1].Load(), l.refused.Load(), l.failures.Load())
	if got := l.failures.Load(); got != 0 {
		t.Errorf("%d requests failed during the rollout, the first ones:\n%s", got, strings.Join(l.firstErrors(), "\n"))
	}
	for i := range l.perEdge {
		if l.perEdge[i].Load() == 0 {
			t.Errorf("edge %d got no request: the test proves nothing", i+1)
		}
	}
	for i := range n {
		s := fmt.Sprintf("s%02d", i)
		p := fb.pointer(s)
		if p.Commit != site.Commit(commits[len(commits)-1]) {
			t.Errorf("%s: live %s, want the last commit %s", s, p.Commit.Short(), site.Commit(commits[len(commits)-1]).Short())
		}
		for _, c := range commits {
			var deploys int
			for _, e := range p.Events {
				if e.Commit == site.Commit(c) {
					deploys++
				}
			}
			if deploys != 1 {
				t.Errorf("%s: %d pointer events for commit %s, want 1: %+v", s, deploys, site.Commit(c).Short(), p.Events)
			}
		}
	}
}

// readyAt reports whether the process with that admin address answers
// /readyz with 200.
func readyAt(admin string) func() bool {
	return func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// getHost GETs / of host from a site listener, status 0 when it failed.
func getHost(addr, host string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// load is a steady stream of page requests to a pair of edges, sent as a
// load balancer would (TestRollingRestart).
type load struct {
	edges    []*builderProcess // only their addresses, which restarts keep
	n        int               // sites s00…
	ready    [2]atomic.Bool
	client   *http.Client
	requests atomic.Int64
	perEdge  [2]atomic.Int64
	refused  atomic.Int64
	failures atomic.Int64
	mu       sync.Mutex
	errs     []string
	done     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, n int, edges []*builderProcess) *load {
	t.Helper()
	l := &load{
		edges:  edges,
		n:      n,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		done:   make(chan struct{}),
	}
	t.Cleanup(l.stop)
	addrs := []struct{ http, admin string }{{edges[0].http, edges[0].admin}, {edges[1].http, edges[1].admin}}
	// The readiness probe, as a load balancer's health check.
	l.wg.Go(func() {
		probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			for i, a := range addrs {
				ok := false
				if resp, err := probe.Get("http://" + a.admin + "/readyz"); err == nil {
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
				}
				l.ready[i].Store(ok)
			}
			select {
			case <-l.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	// The pool starts full: the caller waited for both edges' /readyz.
	waitFor(t, func() bool { return l.ready[0].Load() && l.ready[1].Load() })
	for w := range 2 {
		l.wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-l.done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				e := i % 2
				host := fmt.Sprintf("s%02d.test", i%l.n)
				if !l.ready[e].Load() {
					if !l.ready[1-e].Load() {
						// A load balancer with an empty pool answers 503.
						l.fail(e, host, errors.New("no edge ready"))
						continue
					}
					e = 1 - e
				}
				err := l.get(addrs[e].http, host)
				if errors.Is(err, syscall.ECONNREFUSED) {
					l.refused.Add(1)
					e = 1 - e
					err = l.get(addrs[e].http, host)
				}
				l.requests.Add(1)
				l.perEdge[e].Add(1)
				if err != nil {
					l.fail(e, host, err)
				}
			}
		})
	}
	return l
}

func (l *load) fail(e int, host string, err error) {
	l.failures.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf("%s edge %d %s: %v", time.Now().Format("15:04:05.000"), e+1, host, err))
	}
}

func (l *load) get(addr, host string) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// waitServed waits until edge i has answered requests of the load again
// since the call, so each restart is under load before the next one.
func (l *load) waitServed(t *testing.T, i int) {
	t.Helper()
	from := l.perEdge[i].Load()
	waitFor(t, func() bool { return l.perEdge[i].Load() > from+10 })
}

func (l *load) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

func (l *load) firstErrors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}
