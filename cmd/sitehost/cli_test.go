package main

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cliRun runs a client command against addr with token, a fixed clock
// and no terminal.
func cliRun(t *testing.T, addr, token string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = cliConsole(false).run(t.Context(), args, cliEnv(addr, token), &out, &errOut)
	return out.String(), errOut.String(), err
}

func cliConsole(terminal bool) console {
	return console{
		now:        func() time.Time { return fakeNow },
		isTerminal: func(io.Writer) bool { return terminal },
		backoff:    time.Millisecond,
		after:      time.After,
	}
}

func cliEnv(addr, token string) func(string) string {
	env := map[string]string{"SITEHOST_ADMIN": addr, "SITEHOST_API_TOKEN": token}
	return func(k string) string { return env[k] }
}

// TestCLIGolden: the client commands' output for the fake API's fixed
// data, and whether they fail.
func TestCLIGolden(t *testing.T) {
	f := newFakeAPI(t)
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"status", []string{"status"}, false},
		{"status-site", []string{"status", "docs"}, false},
		{"deploys", []string{"deploys", "blog"}, false},
		{"deploys-channel", []string{"deploys", "blog", "--channel", "pr-3", "--limit", "2"}, false},
		{"deploys-json", []string{"deploys", "--json", "--limit=2", "blog"}, false},
		{"logs", []string{"logs", "blog"}, false},
		{"logs-deploy-json", []string{"logs", "docs", "c0ffee00c0ffee00", "--json"}, false},
		{"logs-follow", []string{"logs", "-f", "blog"}, false},
		{"logs-follow-json", []string{"logs", "blog", "a1b2c3d4e5f60718", "-f", "--json"}, false},
		{"logs-follow-failed", []string{"logs", "-f", "docs"}, true},
		{"sync", []string{"sync", "blog"}, false},
		{"sync-json", []string{"sync", "--json", "blog"}, false},
		{"sync-failed", []string{"sync", "docs"}, true},
		{"sync-no-wait", []string{"sync", "--no-wait", "blog"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := cliRun(t, f.URL, testToken, tc.args...)
			if tc.wantErr {
				wantExitError(t, err)
			} else if err != nil {
				t.Fatalf("%v\nstderr: %s", err, stderr)
			}
			got := stdout
			if stderr != "" {
				got += "--- stderr\n" + stderr
			}
			golden(t, "testdata/cli/"+tc.name+".golden", got)
		})
	}
}

// TestCLIErrors: what a person sees when the token is wrong, the server
// is not there, the site does not exist or an argument is missing.
func TestCLIErrors(t *testing.T) {
	f := newFakeAPI(t)
	for _, tc := range []struct {
		name, addr, token string
		args              []string
		want              string
		usage             bool // printed usage, exitError
	}{
		{"wrong token", f.URL, "wrong", []string{"deploys", "blog"}, "the admin API refused the token: set SITEHOST_API_TOKEN", false},
		{"wrong token follow", f.URL, "wrong", []string{"logs", "-f", "blog", "a1b2c3d4e5f60718"}, "refused the token", false},
		{"wrong token sync", f.URL, "wrong", []string{"sync", "blog"}, "refused the token", false},
		{"unreachable", "127.0.0.1:1", testToken, []string{"status"}, "sitehost is not reachable at 127.0.0.1:1 (is it running?", false},
		{"unreachable logs", "127.0.0.1:1", testToken, []string{"logs", "blog"}, "not reachable", false},
		{"unreachable follow", "127.0.0.1:1", testToken, []string{"logs", "-f", "blog", "a1b2c3d4e5f60718"}, "not reachable", false},
		{"unreachable sync", "127.0.0.1:1", testToken, []string{"sync", "blog"}, "not reachable", false},
		{"unknown site", f.URL, testToken, []string{"status", "nope"}, `no site named "nope"`, false},
		{"unknown site deploys", f.URL, testToken, []string{"deploys", "nope"}, `no site named "nope"`, false},
		{"unknown site logs", f.URL, testToken, []string{"logs", "nope"}, `no site named "nope"`, false},
		{"unknown site sync", f.URL, testToken, []string{"sync", "nope"}, `no site named "nope"`, false},
		{"unknown deploy", f.URL, testToken, []string{"logs", "blog", "0000000000000000"}, "no deploy 0000000000000000 of site blog", false},
		{"no deploys yet", f.URL, testToken, []string{"logs", "slow"}, "no deploys of slow yet", false},
		{"sync timed out", f.URL, testToken, []string{"sync", "slow"}, "sitehost answered 504 Gateway Timeout: sync of slow timed out", false},
		{"bad request", f.URL, testToken, []string{"deploys", "blog", "--limit", "0"}, "--limit 0: want at least 1", true},
		{"deploys without site", f.URL, testToken, []string{"deploys"}, "want one <site>", true},
		{"logs without site", f.URL, testToken, []string{"logs", "-f"}, "want <site>", true},
		{"sync without site", f.URL, testToken, []string{"sync", "--no-wait"}, "want one <site>", true},
		{"status two sites", f.URL, testToken, []string{"status", "blog", "docs"}, "one site at most", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := cliRun(t, tc.addr, tc.token, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", stdout)
			}
			if tc.usage {
				wantExitError(t, err)
				if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "Usage: sitehost "+tc.args[0]+" ") {
					t.Errorf("stderr does not say %q with the usage:\n%s", tc.want, stderr)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	// A 404 says the server's message and nothing more.
	if _, _, err := cliRun(t, f.URL, testToken, "status", "nope"); err == nil || err.Error() != `no site named "nope"` {
		t.Errorf("unknown site: error %v", err)
	}
}

// TestCLILogsFollowResumes: a stream that drops midway is resumed with
// the Last-Event-ID of the last chunk printed, and the log comes out
// whole, once — also when the server sends again what was printed.
func TestCLILogsFollowResumes(t *testing.T) {
	for _, rewind := range []bool{false, true} {
		t.Run("rewind="+strconv.FormatBool(rewind), func(t *testing.T) {
			f := newFakeAPI(t)
			f.rewind = rewind
			stdout, stderr, err := cliRun(t, f.URL, testToken, "logs", "blog", "a1b2c3d4e5f60718", "-f")
			if err != nil {
				t.Fatalf("%v\nstderr: %s", err, stderr)
			}
			chunks := f.logs["a1b2c3d4e5f60718"]
			if want := strings.Join(chunks, ""); stdout != want {
				t.Errorf("output:\n%s\nwant:\n%s", stdout, want)
			}
			after := len(strings.Join(chunks[:f.dropAfter["a1b2c3d4e5f60718"]], ""))
			f.mu.Lock()
			defer f.mu.Unlock()
			if want := []string{"", strconv.Itoa(after)}; !slices.Equal(f.lastEventID, want) {
				t.Errorf("Last-Event-ID of the stream requests = %q, want %q", f.lastEventID, want)
			}
		})
	}
}

// TestCLILogsFollowGivesUp: a stream that keeps dropping is reconnected
// a few times, with backoff, then reported.
func TestCLILogsFollowGivesUp(t *testing.T) {
	f := newFakeAPI(t)
	f.dropAlways = true
	// The waits between tries are recorded, not slept.
	var waits []time.Duration
	con := cliConsole(false)
	con.after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		c := make(chan time.Time, 1)
		c <- fakeNow
		return c
	}
	var out, errOut bytes.Buffer
	err := con.run(t.Context(), []string{"logs", "-f", "blog", "a1b2c3d4e5f60718"}, cliEnv(f.URL, testToken), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "gave up after 6 tries") {
		t.Errorf("error = %v, want it to give up", err)
	}
	if want := strings.Join(f.logs["a1b2c3d4e5f60718"][:3], ""); out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	// Each wait twice the one before, from console.backoff.
	if want := []time.Duration{1 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 16 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("waits between tries %v, want %v", waits, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lastEventID) != 1+followRetries {
		t.Errorf("%d stream requests, want %d", len(f.lastEventID), 1+followRetries)
	}
}

// TestCLIUnseen: text the server sends again after a resume is not
// printed twice.
func TestCLIUnseen(t *testing.T) {
	for _, tc := range []struct {
		text           string
		after, printed int64
		want           string
	}{
		{"abc", 3, 0, "abc"},
		{"abc", 6, 3, "abc"},
		{"abcdef", 6, 3, "def"},
		{"abc", 3, 3, ""},
		{"abc", 3, 9, ""},
	} {
		if got := unseen(tc.text, tc.after, tc.printed); got != tc.want {
			t.Errorf("unseen(%q, %d, %d) = %q, want %q", tc.text, tc.after, tc.printed, got, tc.want)
		}
	}
}

// TestCLISyncProgress: on a terminal, sync draws what the server is doing
// on stderr while it waits, and clears the line before the table.
func TestCLISyncProgress(t *testing.T) {
	f := newFakeAPI(t)
	var stdout, stderr syncBuffer
	const building = `blog: building 9f8e7d6 "Draft: new theme" (hugo) 40s`
	sawProgress := make(chan string, 1)
	f.syncWait = func() {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(stderr.String(), building) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		sawProgress <- stderr.String()
	}
	err := cliConsole(true).run(t.Context(), []string{"sync", "blog"}, cliEnv(f.URL, testToken), &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	during := <-sawProgress
	if !strings.Contains(during, "\r| "+building+"\x1b[K") {
		t.Errorf("stderr while the sync waited = %q, want a progress line %q", during, building)
	}
	if got := stderr.String(); !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("stderr = %q, want the progress line cleared at the end", got)
	}
	if !strings.HasPrefix(stdout.String(), "SITE") {
		t.Errorf("stdout = %q, want the status table", stdout.String())
	}

	// Off a terminal: no progress.
	f.syncWait = nil
	_, errOut, err := cliRun(t, f.URL, testToken, "sync", "blog")
	if err != nil || errOut != "" {
		t.Errorf("sync off a terminal: %v, stderr %q", err, errOut)
	}
}
