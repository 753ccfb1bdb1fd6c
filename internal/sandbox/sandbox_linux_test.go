package sandbox_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sitehost/sitehost/internal/sandbox"
)

// The test binary is the launcher (sandbox-exec) and, with
// SANDBOX_TEST_ACTION set, the sandboxed program: it tries the action and
// exits 0 if it worked, 3 (printing why) if it was refused.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Arg {
		os.Exit(sandbox.Main(os.Args[2:], os.Stderr))
	}
	if a := os.Getenv("SANDBOX_TEST_ACTION"); a != "" {
		if err := hostile(a); err != nil {
			fmt.Fprintf(os.Stderr, "refused: %v\n", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// allocated keeps what the "alloc" action allocates alive.
var allocated [][]byte

func hostile(action string) error {
	arg := os.Getenv("SANDBOX_TEST_ARG")
	switch action {
	case "read":
		_, err := os.ReadFile(arg)
		return err
	case "write":
		return os.WriteFile(arg, []byte("x"), 0o644)
	case "connect":
		c, err := net.Dial("tcp", arg)
		if err == nil {
			c.Close()
		}
		return err
	case "udp":
		c, err := net.Dial("udp", arg)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("from the sandbox"))
		return err
	case "kill":
		pid, _ := strconv.Atoi(arg)
		return syscall.Kill(pid, syscall.SIGUSR1)
	case "ptrace":
		pid, _ := strconv.Atoi(arg)
		return unix.PtraceSeize(pid)
	case "fork":
		for i := range 10000 {
			if _, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "60"}, nil); err != nil {
				return fmt.Errorf("process %d: %w", i+1, err)
			}
		}
		return nil
	case "alloc":
		for range 1024 { // 8 GiB in 8 MiB blocks, every page touched
			b := make([]byte, 8<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			allocated = append(allocated, b)
		}
		return nil
	case "fds":
		// The launcher's files (cgroup.procs, the Landlock ruleset)
		// must not reach the program.
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return err
		}
		for _, fd := range fds {
			link, _ := os.Readlink("/proc/self/fd/" + fd.Name())
			if strings.Contains(link, "landlock") || strings.Contains(link, "cgroup") {
				return fmt.Errorf("fd %s is %s", fd.Name(), link)
			}
		}
		return nil
	case "bigfile":
		f, err := os.Create(arg)
		if err != nil {
			return err
		}
		defer f.Close()
		block := make([]byte, 1<<20)
		for range 64 {
			if _, err := f.Write(block); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", action)
}

const (
	testMemory   = 128 << 20
	testFileSize = 8 << 20
)

// TestHostile runs each action in a sandbox, as a build would be: each is
// refused (or killed), and what a build needs still works.
func TestHostile(t *testing.T) {
	support := sandbox.Detect(exe(t))
	t.Logf("support: %s", support)
	if !strings.Contains(support.String(), "landlock") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no landlock in CI: %s", support)
		}
		t.Skipf("no landlock here: %s", support)
	}
	root := t.TempDir()
	checkout, out, sibling, scratch := filepath.Join(root, "site"), filepath.Join(root, "out"), filepath.Join(root, "other-site"), filepath.Join(root, "scratch")
	for _, d := range []string{checkout, out, sibling, scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(checkout, "index.md"), "hello")
	writeFile(t, filepath.Join(sibling, "secret"), "secret")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	me := strconv.Itoa(os.Getpid())
	mountsBefore := mounts(t)

	tests := []struct {
		name, action, arg string
		allowed           bool
		oom               bool   // killed by the memory limit
		landlockOnly      bool   // without the namespaces: Landlock alone must refuse
		says              string // in what the program printed
	}{
		{name: "read the checkout", action: "read", arg: filepath.Join(checkout, "index.md"), allowed: true},
		{name: "write the output", action: "write", arg: filepath.Join(out, "index.html"), allowed: true},
		{name: "read its own /proc", action: "read", arg: "/proc/self/maps", allowed: true},
		{name: "keep the launcher's files", action: "fds", allowed: true},
		{name: "read the server's environment", action: "read", arg: "/proc/" + me + "/environ"},
		{name: "read /etc/hostname", action: "read", arg: "/etc/hostname", says: "permission denied"},
		{name: "read a sibling site", action: "read", arg: filepath.Join(sibling, "secret"), says: "permission denied"},
		{name: "write a sibling site", action: "write", arg: filepath.Join(sibling, "planted"), says: "permission denied"},
		{name: "write the checkout", action: "write", arg: filepath.Join(checkout, "planted"), says: "permission denied"},
		{name: "write /tmp", action: "write", arg: filepath.Join(os.TempDir(), "sitehost-sandbox-planted"), says: "permission denied"},
		{name: "connect to the server", action: "connect", arg: ln.Addr().String()},
		{name: "signal the server", action: "kill", arg: me},
		{name: "ptrace the server", action: "ptrace", arg: me},
		{name: "connect, landlock alone", action: "connect", arg: ln.Addr().String(), landlockOnly: true, says: "permission denied"},
		{name: "signal the server, landlock alone", action: "kill", arg: me, landlockOnly: true, says: "operation not permitted"},
		{name: "ptrace the server, landlock alone", action: "ptrace", arg: me, landlockOnly: true, says: "operation not permitted"},
		{name: "fork 10,000 processes", action: "fork", says: "resource temporarily unavailable"},
		{name: "write past the file size limit", action: "bigfile", arg: filepath.Join(out, "big")},
		{name: "allocate past the memory limit", action: "alloc", oom: true},
	}
	for _, launcher := range launchers {
		t.Run(launcher, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					sb, err := support.New("test-"+strconv.Itoa(os.Getpid())+"-"+tt.action, sandbox.Paths{
						ReadOnly:  []string{checkout},
						ReadExec:  []string{exe(t), "/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache"},
						ReadWrite: []string{out, scratch, "/dev/null"},
					}, sandbox.Limits{Memory: testMemory, FileSize: testFileSize})
					if err != nil {
						t.Fatal(err)
					}
					defer func() {
						if err := sb.Close(); err != nil {
							t.Error(err)
						}
					}()
					t.Logf("sandbox: %s", sb)
					cmd := command(t, sb, launcher, exe(t), "SANDBOX_TEST_ACTION="+tt.action, "SANDBOX_TEST_ARG="+tt.arg)
					cmd.Dir = checkout
					if tt.landlockOnly {
						cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
					}
					output, err := cmd.CombinedOutput()
					t.Logf("%s: %v: %s", tt.action, err, output)
					var exit *exec.ExitError
					switch {
					case tt.allowed:
						if err != nil {
							t.Fatalf("refused: %v: %s", err, output)
						}
					case tt.oom:
						ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
						if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
							t.Fatalf("not killed: %v: %s", err, output)
						}
						if !sb.OOMKilled() {
							t.Fatal("killed, but not reported as over the memory limit")
						}
						// The cgroup measured the build alone: near the limit,
						// never the test process's own memory on top.
						if p := sb.PeakMemory(); p < testMemory*9/10 || p > testMemory+(1<<20) {
							t.Errorf("peak memory %d, want about the limit %d", p, int64(testMemory))
						}
					case errors.As(err, &exit) && exit.ExitCode() == 3:
						if !strings.Contains(string(output), tt.says) {
							t.Errorf("refused, but not with %q: %s", tt.says, output)
						}
					case tt.action == "bigfile" && errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGXFSZ:
					default:
						t.Fatalf("not refused: %v: %s", err, output)
					}
					if tt.action == "bigfile" {
						if fi, err := os.Stat(tt.arg); err == nil && fi.Size() > testFileSize {
							t.Errorf("wrote %d bytes, more than the limit %d", fi.Size(), testFileSize)
						}
					}
				})
			}
		})
	}
	select {
	case <-accepted:
		t.Error("the listener accepted a connection from the sandbox")
	case <-usr1:
		t.Error("the sandbox signalled the server")
	default:
	}
	// The launcher mounts its /proc in a mount namespace of its own, even
	// when started without the sandbox's namespaces: never in ours.
	if after := mounts(t); after != mountsBefore {
		t.Errorf("our mounts changed:\n%s\nwas:\n%s", after, mountsBefore)
	}
	for _, p := range []string{filepath.Join(sibling, "planted"), filepath.Join(checkout, "planted"), filepath.Join(os.TempDir(), "sitehost-sandbox-planted")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}

// mounts is our mount table: mount points and propagation.
func mounts(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) > 6 {
			out = append(out, strings.Join(append([]string{f[4]}, f[6:]...), " "))
		}
	}
	return strings.Join(out, "\n")
}

// launchers are the ways a sandboxed program starts: Prepare's
// launch, which the launcher in C takes where cgo linked it in ("c") and
// the one in Go takes when told to ("go"), and Command's JSON policy,
// which only the one in Go reads ("json").
var launchers = []string{"c", "go", "json"}

// command is how to run program with env in sb, as launcher says.
func command(t testing.TB, sb *sandbox.Sandbox, launcher, program string, env ...string) *exec.Cmd {
	t.Helper()
	goLauncher := ""
	if launcher == "go" {
		goLauncher = "go"
	}
	t.Setenv(sandbox.LauncherEnv, goLauncher)
	var cmd *exec.Cmd
	if launcher == "json" {
		path, argv, err := sb.Command(program, nil)
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(path, argv...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		sb.SysProcAttr(cmd.SysProcAttr)
	} else {
		cmd = exec.Command(program)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := sb.Prepare(cmd); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd.Env = env
	return cmd
}

// TestFastLaunch: Prepare's launch is the launcher in C's, which
// executes the program before the Go runtime starts (GODEBUG=inittrace=1
// prints nothing), unless LauncherEnv says go.
func TestFastLaunch(t *testing.T) {
	if !sandbox.FastLaunch {
		t.Skip("no launcher in C without cgo")
	}
	support := sandbox.Detect(exe(t))
	sb, err := support.New("test-fast-"+strconv.Itoa(os.Getpid()), sandbox.Paths{ReadExec: sandbox.SystemExec(), ReadOnly: sandbox.SystemRead()}, sandbox.Limits{Memory: testMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, launcher := range launchers {
		t.Run(launcher, func(t *testing.T) {
			var stderr strings.Builder
			cmd := command(t, sb, launcher, "/bin/true")
			cmd.Env = append(cmd.Env, "GODEBUG=inittrace=1") // the launcher's own
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			goRan := strings.Contains(stderr.String(), "init ")
			if goRan != (launcher != "c") {
				t.Errorf("the Go runtime ran: %v, want %v: %s", goRan, launcher != "c", stderr.String())
			}
		})
	}
}

// BenchmarkLaunch starts /bin/true in a build's whole sandbox
// (namespaces, cgroups, Landlock, rlimits), with each launcher and
// without a sandbox ("none"): ns/op is a launch's wall time, cpu-ms/op
// the CPU time of the process. The launcher is this test binary or,
// to see what the launcher in C saves, SANDBOX_BENCH_EXE, a sitehost
// binary (its Go runtime and package initialisation):
//
//	go build -tags extended -o /tmp/sitehost ./cmd/sitehost
//	SANDBOX_BENCH_EXE=/tmp/sitehost go test -run XXX -bench Launch ./internal/sandbox
func BenchmarkLaunch(b *testing.B) {
	launcherExe := os.Getenv("SANDBOX_BENCH_EXE")
	if launcherExe == "" {
		launcherExe = exe(b)
	}
	support := sandbox.Detect(launcherExe)
	b.Logf("support: %s", support)
	for _, launcher := range append([]string{"none"}, launchers...) {
		b.Run(launcher, func(b *testing.B) {
			sb, err := support.New("bench-"+strconv.Itoa(os.Getpid())+"-"+launcher, sandbox.Paths{
				ReadOnly: sandbox.SystemRead(), ReadExec: append(sandbox.SystemExec(), launcherExe), ReadWrite: []string{"/dev/null"},
			}, sandbox.Limits{Memory: testMemory})
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			var cpu time.Duration
			for b.Loop() {
				cmd := exec.Command("/bin/true")
				if launcher != "none" {
					cmd = command(b, sb, launcher, "/bin/true")
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// TestLauncherEnv: the program's environment reaches the program but
// not the launcher, which runs before the sandbox: a library in
// LD_PRELOAD that the sandbox may not read is never loaded, by either.
func TestLauncherEnv(t *testing.T) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	var libc string
	for line := range strings.SplitSeq(string(maps), "\n") {
		if f := strings.Fields(line); len(f) == 6 && strings.HasSuffix(f[5], "/libc.so.6") {
			libc = f[5]
		}
	}
	if libc == "" {
		t.Skip("a static test binary: no dynamic loader in the launcher")
	}
	// A copy outside the sandbox's paths: the sandbox cannot read it.
	data, err := os.ReadFile(libc)
	if err != nil {
		t.Fatal(err)
	}
	preload := filepath.Join(t.TempDir(), "libc.so.6")
	if err := os.WriteFile(preload, data, 0o755); err != nil {
		t.Fatal(err)
	}
	support := sandbox.Detect(exe(t))
	if !strings.Contains(support.String(), "landlock") {
		t.Skipf("no landlock here: %s", support)
	}
	sb, err := support.New("test-env-"+strconv.Itoa(os.Getpid()), sandbox.Paths{ReadExec: sandbox.SystemExec(), ReadOnly: sandbox.SystemRead()}, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, launcher := range []string{"c", "go"} {
		t.Run(launcher, func(t *testing.T) {
			cmd := command(t, sb, launcher, "/bin/sh", "LD_PRELOAD="+preload, "LD_DEBUG=files", "SITE_VAR=site")
			cmd.Args = append(cmd.Args, "-c", "echo $SITE_VAR")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if strings.Contains(string(out), "calling init: "+preload) {
				t.Errorf("%s was loaded:\n%s", preload, out)
			}
			// The program got it (its loader could not read the file),
			// and the rest of its environment.
			if !strings.Contains(string(out), preload) || !strings.Contains(string(out), "\nsite\n") {
				t.Errorf("the program's environment did not reach it:\n%s", out)
			}
		})
	}
}

// TestLaunchFails: a launcher that cannot apply the sandbox runs nothing
// and exits 126 saying why; both launchers alike.
func TestLaunchFails(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	for _, tt := range []struct {
		name string
		opts []string
		says string
	}{
		{"c, a cgroup fd that is not open", []string{"cgroup=9"}, "joining the build cgroup: "},
		{"go, a cgroup fd that is not open", []string{"go", "cgroup=9"}, "joining the build cgroup: "},
		{"c, a ruleset fd that is not open", []string{"landlock=9"}, "applying landlock: "},
		{"go, a ruleset fd that is not open", []string{"go", "landlock=9"}, "applying landlock: "},
		{"an option the launchers do not know", []string{"egress=5"}, `option "egress=5": unknown option`},
		{"an rlimit of two numbers", []string{"rlimit=1,2"}, "want 3 numbers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{sandbox.Arg}, tt.opts...)
			cmd := exec.Command(exe(t), append(args, "--", "/bin/touch", marker)...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 126 || !strings.Contains(string(out), "sitehost sandbox: ") || !strings.Contains(string(out), tt.says) {
				t.Errorf("%v: %s; want exit 126 saying %q", err, out, tt.says)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the program ran")
			}
		})
	}
}

func exe(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCgroupFallback: when the build's cgroup cannot be made (here: its
// name is taken), the build still runs, its memory limited by RLIMIT_DATA,
// and the sandbox says so.
func TestCgroupFallback(t *testing.T) {
	if raceEnabled {
		// ThreadSanitizer maps its shadow memory first and dies (exit
		// 66) under RLIMIT_DATA before the Go runtime can run out.
		t.Skip("under -race the program is ThreadSanitizer's: run without -race")
	}
	support := sandbox.Detect(exe(t))
	id := "test-fallback-" + strconv.Itoa(os.Getpid())
	lim := sandbox.Limits{Memory: 128 << 20}
	first, err := support.New(id, sandbox.Paths{}, lim)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if !strings.Contains(first.String(), "memory 128 MiB") {
		t.Skipf("no memory cgroup here: %s", first)
	}
	sb, err := support.New(id, sandbox.Paths{ReadExec: []string{exe(t), "/usr", "/lib", "/lib64"}}, lim)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if s := sb.String(); !strings.Contains(s, "no cgroup (") || !strings.Contains(s, "data 128 MiB") {
		t.Fatalf("sandbox %q: want no cgroup, RLIMIT_DATA 128 MiB", s)
	}
	for _, launcher := range launchers {
		t.Run(launcher, func(t *testing.T) {
			var output []byte
			var err error
			// Go's runtime sometimes dies of SIGSEGV in its GC instead of
			// running out under RLIMIT_DATA (~4 % of runs, before the
			// launcher in C too): that is Go's, so it gets another try.
			for try := 0; try < 3; try++ {
				output, err = command(t, sb, launcher, exe(t), "SANDBOX_TEST_ACTION=alloc").CombinedOutput()
				if !strings.Contains(string(output), "SIGSEGV: segmentation violation") || !strings.Contains(string(output), "runtime.") {
					break
				}
				t.Logf("try %d: the Go runtime crashed: %.200s", try+1, output)
			}
			if err == nil || !sandbox.GoOutOfMemory(output) {
				t.Fatalf("allocating past RLIMIT_DATA: %v, %.300s", err, output)
			}
		})
	}
}

// TestConnectTCP: a sandbox with Paths.ConnectTCP reaches the host's
// network, but only those ports: of two listeners on 127.0.0.1, the
// allowed one is reached and the other refused by Landlock (EACCES).
func TestConnectTCP(t *testing.T) {
	support := sandbox.Detect(exe(t))
	listen := func() (net.Listener, chan struct{}) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		accepted := make(chan struct{}, len(launchers))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
				accepted <- struct{}{}
			}
		}()
		return ln, accepted
	}
	allowed, allowedAccepted := listen()
	other, otherAccepted := listen()
	port := uint16(allowed.Addr().(*net.TCPAddr).Port)

	sb, err := support.New("test-connect-"+strconv.Itoa(os.Getpid()), sandbox.Paths{
		ReadExec:   []string{exe(t), "/usr", "/lib", "/lib64", "/etc/ld.so.cache"},
		ReadWrite:  []string{"/dev/null"},
		ConnectTCP: []uint16{port},
	}, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	t.Logf("sandbox: %s", sb)
	if want := fmt.Sprintf("tcp connect to port %d only", port); !strings.Contains(sb.String(), want) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sandbox %q, want %q", sb, want)
		}
		t.Skipf("no landlock ABI 4 here: %s", sb)
	}
	if !sb.Contained() {
		t.Error("not Contained, with Landlock holding TCP to one port")
	}
	run := func(t *testing.T, launcher, addr string) (int, string) {
		cmd := command(t, sb, launcher, exe(t), "SANDBOX_TEST_ACTION=connect", "SANDBOX_TEST_ARG="+addr)
		output, err := cmd.CombinedOutput()
		t.Logf("connect %s: %v: %s", addr, err, output)
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(output)
	}
	for _, launcher := range launchers {
		t.Run(launcher, func(t *testing.T) {
			if code, out := run(t, launcher, allowed.Addr().String()); code != 0 {
				t.Fatalf("the allowed port was refused: exit %d: %s", code, out)
			}
			<-allowedAccepted // the connection reached our listener: the host's network
			if code, out := run(t, launcher, other.Addr().String()); code != 3 || !strings.Contains(out, "permission denied") {
				t.Fatalf("another port: exit %d, want 3 refused with permission denied: %s", code, out)
			}
		})
	}
	select {
	case <-otherAccepted:
		t.Error("the other listener accepted a connection from the sandbox")
	default:
	}
}

// TestEgress: a sandbox with Paths.Egress reaches the listener the parent
// serves, and nothing of the host: not a TCP listener on the host's
// 127.0.0.1, nor a UDP one. With a network namespace that is the
// program's own (with or without Landlock on top); without, Landlock
// holds TCP to the egress port, and UDP is not limited.
func TestEgress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostAccepted := make(chan struct{}, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			hostAccepted <- struct{}{}
		}
	}()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()

	full := sandbox.Detect(exe(t))
	for _, tt := range []struct {
		name    string
		support *sandbox.Support
		says    string // in String()
		refused string // how a connection to the host's listener fails
		udp     bool   // UDP reaches the host
	}{
		{"own network namespace", full, "own network namespace: loopback and the egress port 3128 only", "permission denied", false},
		{"own network namespace alone", sandbox.WithoutLandlock(full), "own network namespace: loopback and the egress port 3128 only", "connection refused", false},
		{"host network", sandbox.WithoutNamespaces(full), "host network, tcp connect to the egress port", "permission denied", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// One program per sandbox with Egress.
			newSandbox := func() *sandbox.Sandbox {
				sb, err := tt.support.New("test-egress-"+strconv.Itoa(os.Getpid()), sandbox.Paths{
					ReadExec:  []string{exe(t), "/usr", "/lib", "/lib64", "/etc/ld.so.cache"},
					ReadWrite: []string{"/dev/null"},
					Egress:    true,
				}, sandbox.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sb.Close() })
				return sb
			}
			sb := newSandbox()
			t.Logf("sandbox: %s, egress at %s", sb, sb.EgressAddr())
			if !strings.Contains(sb.String(), tt.says) {
				if os.Getenv("CI") == "true" {
					t.Fatalf("sandbox %q, want %q", sb, tt.says)
				}
				t.Skipf("not here: %s", sb)
			}
			if !sb.Contained() {
				t.Error("not Contained")
			}
			// run starts action in sb and serves its egress listener:
			// the exit code, what it printed, and whether a connection
			// arrived on the egress listener.
			run := func(sb *sandbox.Sandbox, action, arg string) (int, string, bool) {
				path, argv, err := sb.Command(exe(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(path, argv...)
				cmd.Env = []string{"SANDBOX_TEST_ACTION=" + action, "SANDBOX_TEST_ARG=" + arg}
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
				sb.SysProcAttr(cmd.SysProcAttr)
				cmd.ExtraFiles = sb.Files()
				var out strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				egress, err := sb.Egress(t.Context())
				if err != nil {
					cmd.Wait() //nolint:errcheck // its output says why
					t.Fatalf("%v: %s", err, out.String())
				}
				accepted := make(chan bool, 1)
				go func() {
					c, err := egress.Accept()
					if err == nil {
						c.Close()
					}
					accepted <- err == nil
				}()
				err = cmd.Wait()
				egress.Close() // ends the Accept if nothing came
				t.Logf("%s %s: %v: %s", action, arg, err, out.String())
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					t.Fatal(err)
				}
				return cmd.ProcessState.ExitCode(), out.String(), <-accepted
			}

			if code, out, got := run(sb, "connect", sb.EgressAddr()); code != 0 || !got {
				t.Fatalf("connecting to the egress listener: exit %d, accepted %v: %s", code, got, out)
			}
			if code, out, got := run(newSandbox(), "connect", ln.Addr().String()); code != 3 || got || !strings.Contains(out, tt.refused) {
				t.Errorf("connecting to the host's listener: exit %d (want 3, %s), egress accepted %v: %s", code, tt.refused, got, out)
			}
			select {
			case <-hostAccepted:
				t.Error("the host's TCP listener accepted a connection from the sandbox")
			default:
			}
			if code, out, _ := run(newSandbox(), "udp", udp.LocalAddr().String()); code != 0 && code != 3 {
				t.Fatalf("udp: exit %d: %s", code, out)
			}
			// Loopback delivers a datagram as it is sent: one from the
			// sandbox would be queued before this one.
			c, err := net.Dial("udp", udp.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("control")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, _, err := udp.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			got := string(buf[:n])
			if tt.udp {
				// Landlock has no UDP rules: the control of this test.
				if got != "from the sandbox" {
					t.Errorf("on the host's network, the sandbox's datagram did not arrive first: %q", got)
				}
				return
			}
			if got != "control" {
				t.Errorf("the host's UDP listener got %q from the sandbox", got)
			}
		})
	}
}

// TestEgressNeedsItsNamespace: a launcher told to make the egress
// listener in a network namespace of its own, but started in the host's,
// refuses rather than listen on the host.
func TestEgressNeedsItsNamespace(t *testing.T) {
	sb, err := sandbox.Detect(exe(t)).New("test-egress-ns-"+strconv.Itoa(os.Getpid()), sandbox.Paths{
		ReadExec: []string{exe(t), "/usr", "/lib", "/lib64", "/etc/ld.so.cache"},
		Egress:   true,
	}, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if !strings.Contains(sb.String(), "own network namespace") {
		t.Skipf("no network namespace here: %s", sb)
	}
	path, argv, err := sb.Command(exe(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, argv...)
	cmd.Env = []string{"SANDBOX_TEST_ACTION=connect", "SANDBOX_TEST_ARG=" + sb.EgressAddr()}
	cmd.ExtraFiles = sb.Files() // but not sb.SysProcAttr: the host's network
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 126 || !strings.Contains(string(out), "not a network namespace of the sandbox's own") {
		t.Fatalf("launcher in the host's network: %v: %s", err, out)
	}
	if _, err := sb.Egress(t.Context()); err == nil {
		t.Error("got an egress listener from a launcher that refused")
	}
}
