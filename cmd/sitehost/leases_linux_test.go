package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sitehost/sitehost/internal/lease"
	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/site"
)

// lockedBuffer is a process's output, read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// builderProcess is one sitehost process of a fleet.
type builderProcess struct {
	cmd   *exec.Cmd
	out   *lockedBuffer
	admin string // its admin listener's address
	http  string // its site listener's address
	cfg   string // its config file, for a restart (restartFleetProcess)
}

// leaseRecord is a site lease as stored (internal/lease's layout).
type leaseRecord struct {
	Holder     string `json:"holder"`
	Generation uint64 `json:"generation"`
}

// TestLeasesAmongBuilderProcesses runs three sitehost processes sharing
// twelve sites through leases on one MinIO bucket (two of them behind a
// slow link, so their deploys take seconds): the sites spread 4/4/4, every
// commit is built once per site, a builder SIGKILLed mid-deploy loses its
// sites within the lease time and the others deploy what it left, once;
// a builder SIGSTOPped mid-deploy past its lease and resumed says it lost
// its sites and publishes nothing, and the live pointers are the new
// owner's.
func TestLeasesAmongBuilderProcesses(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	client := m.Client(t)
	repo := plainRepo(t, 2, "v1")
	const n = 12
	const leaseTime = 5 * time.Second
	sites := sitesYAML(n, repo.URL())
	start := func() *builderProcess { return startBuilder(t, m, m.Endpoint, bucket, sites, leaseTime) }
	// Two builders' link to the bucket is slow, so their deploys take
	// seconds and they can be killed or stopped in the middle of one.
	slow := newSlowProxy(t, m.Endpoint)
	slow.delay.Store(int64(200 * time.Millisecond))
	fb := &fleetBucket{tb: t, client: client, bucket: bucket, n: n}
	leases, pointer := fb.leases, fb.pointer
	allLive := func(c site.Commit) func() bool { return fb.live(c, n) }
	// builds counts "building" log lines per site over every process.
	slowStart := func() *builderProcess { return startBuilder(t, m, slow.Addr(), bucket, sites, leaseTime) }
	ps := []*builderProcess{slowStart(), slowStart(), start()}
	builds := func(ps ...*builderProcess) map[string]int { return logged(ps, "building", "") }
	spread := fb.spread

	v1 := strings.TrimSpace(repo.Git(repo.Work, "rev-parse", "HEAD"))
	waitFor(t, allLive(site.Commit(v1)))
	waitFor(t, spread(3))
	writePages(t, repo.Work, 2, "v2")
	v2 := repo.Commit("v2")
	waitFor(t, allLive(site.Commit(v2)))
	for i := range n {
		if got := builds(ps...)[fmt.Sprintf("s%02d", i)]; got != 2 {
			t.Errorf("s%02d built %d times for 2 commits", i, got)
		}
	}

	// SIGKILL the slow builder in the middle of a deploy: its sites move
	// to the two others, which deploy what it left unpublished, once.
	victim := ps[0]
	before := leases()
	held := heldBy(before, victim.cmd.Process.Pid)
	if len(held) == 0 {
		t.Fatalf("the first builder holds no site: %v", before)
	}
	writePages(t, repo.Work, 2, "v3")
	v3 := repo.Commit("v3")
	short := site.Commit(v3).Short()
	var caught string
	waitFor(t, func() bool {
		for s := range logged(ps[:1], "building", short) {
			caught = s
		}
		return caught != ""
	})
	killed := time.Now()
	victim.cmd.Process.Kill() //nolint:errcheck // checked by Wait
	victim.cmd.Wait()         //nolint:errcheck // killed
	if logged(ps[:1], "live", short)[caught] != 0 {
		t.Fatalf("%s went live before the kill; the test proves nothing", caught)
	}
	waitFor(t, func() bool { return moved(leases(), before, held) })
	took := time.Since(killed)
	t.Logf("takeover of %d sites after SIGKILL mid-deploy of %s: %s (lease time %s)", len(held), caught, took.Round(10*time.Millisecond), leaseTime)
	ps = ps[1:]
	waitFor(t, allLive(site.Commit(v3)))
	victimLive, others := logged([]*builderProcess{victim}, "live", short), logged(ps, "building", short)
	for s := range held {
		if got := victimLive[s] + others[s]; got != 1 {
			t.Errorf("%s: %d deploys of v3 (the killed builder published %d, the others built %d), want 1", s, got, victimLive[s], others[s])
		}
	}
	var events int
	for _, e := range pointer(caught).Events {
		if e.Commit == site.Commit(v3) {
			events++
		}
	}
	if events != 1 {
		t.Errorf("%s: %d pointer events for v3, want 1: %+v", caught, events, pointer(caught).Events)
	}

	// SIGSTOP the other slow builder in the middle of a deploy, past its
	// lease; the last one takes its sites over and publishes the commit;
	// SIGCONT: the stopped one has lost its sites, says so, and its deploy
	// does not go live.
	stopped := ps[0]
	waitFor(t, spread(2))
	writePages(t, repo.Work, 2, "v4")
	v4 := repo.Commit("v4")
	short = site.Commit(v4).Short()
	caught = ""
	waitFor(t, func() bool {
		for s := range logged(ps[:1], "building", short) {
			caught = s
		}
		return caught != ""
	})
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if logged(ps[:1], "live", short)[caught] != 0 {
		t.Fatalf("%s went live before the stop; the test proves nothing", caught)
	}
	waitFor(t, spread(1))
	waitFor(t, allLive(site.Commit(v4)))
	final := leases()
	if err := stopped.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// It learns either from its own clock (the heartbeat lapsed) or, if a
	// heartbeat write was under way at the stop, from the leases.
	waitFor(t, func() bool {
		out := stopped.out.String()
		return strings.Contains(out, `"msg":"lost the leases"`) || strings.Contains(out, `"msg":"lost a lease to another builder"`)
	})
	// Its deploy ends one of two ways, by timing: abandoned when it hears
	// of the loss first, refused at the flip (fenced) when it gets there
	// first. Either way it does not go live (below).
	waitFor(t, func() bool {
		return logged(ps[:1], "skipped publishing", "")[caught] > 0 ||
			logged(ps[:1], "site lease lost: abandoning the run under way", "")[caught] > 0
	})
	if n := logged(ps[:1], "live", short)[caught]; n != 0 {
		t.Errorf("%s: the resumed builder published v4 %d times", caught, n)
	}
	events = 0
	for _, e := range pointer(caught).Events {
		if e.Commit == site.Commit(v4) {
			events++
		}
	}
	if events != 1 {
		t.Errorf("%s: %d pointer events for v4, want 1: %+v", caught, events, pointer(caught).Events)
	}
	// The resumed builder takes sites again only through new leases; the
	// pointers stay the live owner's.
	for i := range n {
		s := fmt.Sprintf("s%02d", i)
		p := pointer(s)
		if p.Commit != site.Commit(v4) {
			t.Errorf("%s: live %s after the stopped builder resumed, want %s", s, p.Commit.Short(), site.Commit(v4).Short())
		}
		if p.Generation < final[s].Generation {
			t.Errorf("%s: pointer generation %d, below its lease's %d", s, p.Generation, final[s].Generation)
		}
	}
}

// startBuilder runs a sitehost builder process on the bucket, for the
// sites of sitesYAML, until the test ends.
func startBuilder(tb testing.TB, m *miniotest.Server, endpoint, bucket, sitesYAML string, leaseTime time.Duration) *builderProcess {
	tb.Helper()
	return startFleetProcess(tb, m, endpoint, bucket, sitesYAML, fmt.Sprintf("  poll_interval: 1s\n  lease_time: %s\n", leaseTime))
}

// startFleetProcess runs `sitehost serve` on the bucket for the sites of
// sitesYAML, with server holding more server: lines (role, polling,
// leases, shutdown_delay: 0s unless given), until the test ends.
func startFleetProcess(tb testing.TB, m *miniotest.Server, endpoint, bucket, sitesYAML, server string) *builderProcess {
	tb.Helper()
	cfgPath := filepath.Join(tb.TempDir(), "sites.yaml")
	admin, httpAddr := freeAddr(tb), freeAddr(tb)
	if !strings.Contains(server, "shutdown_delay:") {
		server += "  shutdown_delay: 0s\n"
	}
	doc := fmt.Sprintf(`server:
  data_dir: %q
  http: %q
  admin: %q
%s  api_token_env: TEST_TOKEN
  storage:
    kind: s3
    s3: {endpoint: %q, bucket: %q}
sites:
%s`, tb.TempDir(), httpAddr, admin, server, endpoint, bucket, sitesYAML)
	if err := os.WriteFile(cfgPath, []byte(doc), 0o644); err != nil {
		tb.Fatal(err)
	}
	return execFleetProcess(tb, m, &builderProcess{admin: admin, http: httpAddr, cfg: cfgPath})
}

// restartFleetProcess runs p's config again (same data dir, same
// listeners' addresses) once p has exited, as a restarted replica.
func restartFleetProcess(tb testing.TB, m *miniotest.Server, p *builderProcess) *builderProcess {
	tb.Helper()
	return execFleetProcess(tb, m, &builderProcess{admin: p.admin, http: p.http, cfg: p.cfg})
}

func execFleetProcess(tb testing.TB, m *miniotest.Server, p *builderProcess) *builderProcess {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "serve", "-c", p.cfg)
	cmd.Env = append(os.Environ(), "SITEHOST_TEST_MAIN=1", "TEST_TOKEN="+testToken)
	for k, v := range s3Env(m) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p.cmd, p.out = cmd, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() //nolint:errcheck // already gone is fine
			cmd.Wait()         //nolint:errcheck // killed
		}
		if tb.Failed() {
			tb.Logf("builder %d output:\n%s", cmd.Process.Pid, p.out)
		}
	})
	return p
}

// fleetBucket reads the leases and pointers of n sites s00… in a bucket.
type fleetBucket struct {
	tb     testing.TB
	client *minio.Client
	bucket string
	n      int
}

func (f *fleetBucket) getJSON(key string, v any) error {
	obj, err := f.client.GetObject(context.Background(), f.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// leases are the site leases by site.
func (f *fleetBucket) leases() map[string]leaseRecord {
	out := map[string]leaseRecord{}
	for i := range f.n {
		var r leaseRecord
		if err := f.getJSON(fmt.Sprintf("leases/sites/s%02d.json", i), &r); err == nil {
			out[fmt.Sprintf("s%02d", i)] = r
		}
	}
	return out
}

// live reports whether sites s00… s<n-1> are all live at commit c.
func (f *fleetBucket) live(c site.Commit, n int) func() bool {
	return func() bool {
		for i := range n {
			if f.pointer(fmt.Sprintf("s%02d", i)).Commit != c {
				return false
			}
		}
		return true
	}
}

// pointer is site s's production pointer, zero when absent.
func (f *fleetBucket) pointer(s string) manifest.Pointer {
	var p manifest.Pointer
	f.getJSON("sites/"+s+"/channels/production.json", &p) //nolint:errcheck // zero when absent
	return p
}

// spread reports whether the n sites are all held, by exactly holders
// builders, each floor or ceil of n/holders.
func (f *fleetBucket) spread(holders int) func() bool {
	return func() bool {
		count := map[string]int{}
		for _, r := range f.leases() {
			if r.Holder != "" {
				count[r.Holder]++
			}
		}
		if len(count) != holders {
			return false
		}
		total := 0
		for _, c := range count {
			if c < f.n/holders || c > (f.n+holders-1)/holders {
				return false
			}
			total += c
		}
		return total == f.n
	}
}

// heldBy lists the sites whose lease names a holder of process pid.
func heldBy(leases map[string]leaseRecord, pid int) map[string]bool {
	held := map[string]bool{}
	for s, r := range leases {
		if strings.Contains(r.Holder, fmt.Sprintf("-%d-", pid)) {
			held[s] = true
		}
	}
	return held
}

// moved reports whether every site of held has a newer lease than in
// before.
func moved(now, before map[string]leaseRecord, held map[string]bool) bool {
	for s := range held {
		if now[s].Generation <= before[s].Generation || now[s].Holder == before[s].Holder {
			return false
		}
	}
	return true
}

// TestEdgeSyncOneBuildByOwner: two builders share four sites through
// leases and poll nothing; a sync sent to an edge's API becomes a request
// marker that the site's owner alone takes: every site is built exactly
// once for the new commit, by one builder. The edge's API shows what only
// the owner knows: a fifth site's failed build, and why.
func TestEdgeSyncOneBuildByOwner(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	repo := plainRepo(t, 2, "v1")
	const n = 4
	// s04 (big) holds files to 1 KiB: the v2 commit fails there.
	sites := sitesYAML(n, repo.URL()) + "  - name: s04\n    repo: " + repo.URL() + "\n    domains: [s04.test]\n    build: {tool: none, max_file: 1KiB}\n"
	apiSite := func(p *builderProcess, name string) (st struct {
		State  string `json:"state"`
		Error  string `json:"error"`
		Builds int    `json:"builds"`
	}) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.admin+"/api/v1/sites/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	builders := []*builderProcess{
		startFleetProcess(t, m, m.Endpoint, bucket, sites, "  role: builder\n  poll_interval: 0s\n  lease_time: 5s\n"),
		startFleetProcess(t, m, m.Endpoint, bucket, sites, "  role: builder\n  poll_interval: 0s\n  lease_time: 5s\n"),
	}
	edge := startFleetProcess(t, m, m.Endpoint, bucket, sites, "  role: edge\n")
	fb := &fleetBucket{tb: t, client: m.Client(t), bucket: bucket, n: n + 1} // leases spread over all five
	allLive := func(c string) func() bool { return fb.live(site.Commit(c), n) }
	v1 := strings.TrimSpace(repo.Git(repo.Work, "rev-parse", "HEAD"))
	waitFor(t, allLive(v1)) // each owner's first sync
	waitFor(t, fb.spread(2))

	writePages(t, repo.Work, 2, "v2")
	if err := os.WriteFile(filepath.Join(repo.Work, "big.bin"), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := repo.Commit("v2")
	for i := range n + 1 {
		name := fmt.Sprintf("s%02d", i)
		req, _ := http.NewRequest(http.MethodPost, "http://"+edge.admin+"/api/v1/sites/"+name+"/sync", nil)
		req.Header.Set("Authorization", "bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("sync %s on the edge: %d, want 202", name, resp.StatusCode)
		}
	}
	waitFor(t, allLive(v2))
	// What the owner knows, on the edge: the failure and its reason, the
	// builds counted.
	waitFor(t, func() bool { return apiSite(edge, "s04").State == string(site.Failed) })
	if st := apiSite(edge, "s04"); !strings.Contains(st.Error, "big.bin") {
		t.Errorf("edge's status of s04: %+v, want the owner's error naming big.bin", st)
	}
	if st := apiSite(edge, "s00"); st.State != string(site.Synced) || st.Builds < 1 {
		t.Errorf("edge's status of s00: %+v, want synced with the owner's build count", st)
	}
	built := logged(builders, "building", site.Commit(v2).Short())
	for i := range n {
		if s := fmt.Sprintf("s%02d", i); built[s] != 1 {
			t.Errorf("%s built %d times for v2, want once by its owner", s, built[s])
		}
	}
	if got := logged([]*builderProcess{edge}, "building", ""); len(got) != 0 {
		t.Errorf("the edge built: %v", got)
	}
}

// sitesYAML is n tool-none sites s00… on one repository.
func sitesYAML(n int, repo string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%02d\n    repo: %s\n    domains: [s%02d.test]\n    build: {tool: none}\n", i, repo, i)
	}
	return b.String()
}

// BenchmarkLeaseTakeover: how long after a SIGKILL the dead builder's
// sites have new owners, with three builder processes, 12 sites and the
// default 15 s lease. Every iteration kills one and starts another.
//
//	go test -tags extended -run XXX -bench LeaseTakeover -benchtime 3x ./cmd/sitehost
func BenchmarkLeaseTakeover(b *testing.B) {
	m := miniotest.Start(b)
	bucket := m.Bucket(b)
	repo := plainRepo(b, 2, "v1")
	const n = 12
	sites := sitesYAML(n, repo.URL())
	fb := &fleetBucket{tb: b, client: m.Client(b), bucket: bucket, n: n}
	ps := []*builderProcess{}
	for range 3 {
		ps = append(ps, startBuilder(b, m, m.Endpoint, bucket, sites, lease.DefaultLeaseTime))
	}
	var took []time.Duration
	for range b.N {
		waitUntil(b, 3*time.Minute, fb.spread(3))
		victim := ps[0]
		before := fb.leases()
		held := heldBy(before, victim.cmd.Process.Pid)
		killed := time.Now()
		victim.cmd.Process.Kill() //nolint:errcheck // checked by Wait
		victim.cmd.Wait()         //nolint:errcheck // killed
		waitUntil(b, time.Minute, func() bool { return moved(fb.leases(), before, held) })
		took = append(took, time.Since(killed))
		ps = append(ps[1:], startBuilder(b, m, m.Endpoint, bucket, sites, lease.DefaultLeaseTime))
	}
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "s-median/takeover")
	b.ReportMetric(took[len(took)-1].Seconds(), "s-max/takeover")
	b.ReportMetric(0, "ns/op")
}

func waitUntil(tb testing.TB, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logged counts, per site, the log lines of ps with message msg and, when
// commit is set, that commit.
func logged(ps []*builderProcess, msg, commit string) map[string]int {
	out := map[string]int{}
	for _, p := range ps {
		for line := range strings.Lines(p.out.String()) {
			var l struct{ Msg, Site, Commit string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg && (commit == "" || l.Commit == commit) {
				out[l.Site]++
			}
		}
	}
	return out
}
