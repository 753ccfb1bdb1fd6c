package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

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

// builderProcess is one sitehost builder of a fleet, as its own process.
type builderProcess struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

// leaseRecord is a site lease as stored (internal/lease's layout).
type leaseRecord struct {
	Holder     string `json:"holder"`
	Generation uint64 `json:"generation"`
}

// TestLeasesAmongBuilderProcesses runs three sitehost processes sharing
// twelve sites through leases on one MinIO bucket: the sites spread,
// every commit is built once per site, a SIGKILLed builder's sites move
// within the lease time, and a builder stopped (SIGSTOP) past its lease
// and resumed has lost its sites, says so, and publishes nothing.
func TestLeasesAmongBuilderProcesses(t *testing.T) {
	m := miniotest.Start(t)
	bucket := m.Bucket(t)
	client := m.Client(t)
	repo := plainRepo(t, 2, "v1")
	const n = 12
	const leaseTime = 3 * time.Second
	var sites strings.Builder
	for i := range n {
		fmt.Fprintf(&sites, "  - name: s%02d\n    repo: %s\n    domains: [s%02d.test]\n    build: {tool: none}\n", i, repo.URL(), i)
	}
	start := func() *builderProcess {
		cfgPath := filepath.Join(t.TempDir(), "sites.yaml")
		doc := fmt.Sprintf(`server:
  data_dir: %q
  http: %q
  admin: %q
  poll_interval: 1s
  lease_time: %s
  api_token_env: TEST_TOKEN
  storage:
    kind: s3
    s3: {endpoint: %q, bucket: %q}
sites:
%s`, t.TempDir(), freeAddr(t), freeAddr(t), leaseTime, m.Endpoint, bucket, sites.String())
		if err := os.WriteFile(cfgPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "serve", "-c", cfgPath)
		cmd.Env = append(os.Environ(), "SITEHOST_TEST_MAIN=1", "TEST_TOKEN="+testToken)
		for k, v := range s3Env(m) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		p := &builderProcess{cmd: cmd, out: &lockedBuffer{}}
		cmd.Stdout, cmd.Stderr = p.out, p.out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill() //nolint:errcheck // already gone is fine
				cmd.Wait()         //nolint:errcheck // killed
			}
			if t.Failed() {
				t.Logf("builder %d output:\n%s", cmd.Process.Pid, p.out)
			}
		})
		return p
	}
	getJSON := func(key string, v any) error {
		obj, err := client.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
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
	leases := func() map[string]leaseRecord {
		out := map[string]leaseRecord{}
		for i := range n {
			var r leaseRecord
			if err := getJSON(fmt.Sprintf("leases/sites/s%02d.json", i), &r); err == nil {
				out[fmt.Sprintf("s%02d", i)] = r
			}
		}
		return out
	}
	pointer := func(s string) manifest.Pointer {
		var p manifest.Pointer
		getJSON("sites/"+s+"/channels/production.json", &p) //nolint:errcheck // zero when absent
		return p
	}
	allLive := func(c site.Commit) func() bool {
		return func() bool {
			for i := range n {
				if pointer(fmt.Sprintf("s%02d", i)).Commit != c {
					return false
				}
			}
			return true
		}
	}
	// builds counts "building" log lines per site over every process.
	ps := []*builderProcess{start(), start(), start()}
	builds := func() map[string]int {
		out := map[string]int{}
		for _, p := range ps {
			for line := range strings.Lines(p.out.String()) {
				var l struct{ Msg, Site string }
				if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "building" {
					out[l.Site]++
				}
			}
		}
		return out
	}
	spread := func(holders int) func() bool {
		return func() bool {
			count := map[string]int{}
			for _, r := range leases() {
				if r.Holder != "" {
					count[r.Holder]++
				}
			}
			if len(count) != holders {
				return false
			}
			for _, c := range count {
				if c != (n+holders-1)/holders {
					return false
				}
			}
			return true
		}
	}

	v1 := strings.TrimSpace(repo.Git(repo.Work, "rev-parse", "HEAD"))
	waitFor(t, allLive(site.Commit(v1)))
	waitFor(t, spread(3))
	writePages(t, repo.Work, 2, "v2")
	v2 := repo.Commit("v2")
	waitFor(t, allLive(site.Commit(v2)))
	for i := range n {
		if got := builds()[fmt.Sprintf("s%02d", i)]; got != 2 {
			t.Errorf("s%02d built %d times for 2 commits", i, got)
		}
	}

	// SIGKILL one builder: its sites move to the two others.
	victim := ps[0]
	held := map[string]bool{}
	before := leases()
	var victimID string
	for s, r := range before {
		if strings.Contains(r.Holder, fmt.Sprintf("-%d-", victim.cmd.Process.Pid)) {
			held[s], victimID = true, r.Holder
		}
	}
	if len(held) == 0 {
		t.Fatalf("the first builder holds no site: %v", before)
	}
	killed := time.Now()
	victim.cmd.Process.Kill() //nolint:errcheck // checked by Wait
	victim.cmd.Wait()         //nolint:errcheck // killed
	waitFor(t, func() bool {
		for s, r := range leases() {
			if held[s] && (r.Holder == victimID || r.Generation == before[s].Generation) {
				return false
			}
		}
		return true
	})
	took := time.Since(killed)
	t.Logf("takeover of %d sites after SIGKILL: %s (lease time %s)", len(held), took.Round(10*time.Millisecond), leaseTime)
	ps = ps[1:]
	writePages(t, repo.Work, 2, "v3")
	v3 := repo.Commit("v3")
	waitFor(t, allLive(site.Commit(v3)))

	// SIGSTOP a builder past its lease; the other takes its sites over and
	// publishes the next commit; SIGCONT: the stopped one lost the sites.
	stopped := ps[0]
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, spread(1))
	writePages(t, repo.Work, 2, "v4")
	v4 := repo.Commit("v4")
	waitFor(t, allLive(site.Commit(v4)))
	final := leases()
	if err := stopped.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(stopped.out.String(), `"msg":"lost the leases"`) })
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
