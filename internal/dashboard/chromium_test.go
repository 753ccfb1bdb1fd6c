package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/sitehost/sitehost/internal/api"
	"github.com/sitehost/sitehost/internal/browsertest"
	"github.com/sitehost/sitehost/internal/site"
)

// streamedLines are what the fake log stream sends after the log so far.
var streamedLines = []string{
	"streamed: rendering 42 pages\n",
	"streamed: uploading 61 files (2.3 MB)\n",
	"streamed: published " + string(buildingID) + " to branch-staging\n",
}

// fakeLogStream answers the admin API's log endpoint as the real one does
// (internal/api): the log so far as one "log" event, a few more chunks,
// then "end". It ends the deploy in the fake source first, so the reload
// that follows shows it live. Like the admin API, it lets the dashboard's
// session cookie through.
func fakeLogStream(h *Handler, src *fakeSource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.SessionOK(r) {
			http.Error(w, `{"error": "missing or wrong bearer token"}`, http.StatusUnauthorized)
			return
		}
		id := site.DeployID(r.PathValue("id"))
		text, state, err := src.logAndState(r.Context(), site.Name(r.PathValue("site")), id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), api.MediaSSE) || state != site.OutcomeBuilding {
			w.Header().Set(api.LogState, string(state))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(text)
			return
		}
		w.Header().Set("Content-Type", api.MediaSSE)
		w.Header().Set("Cache-Control", "no-store")
		rc := http.NewResponseController(w)
		offset := 0
		send := func(event string, v any) {
			data, err := json.Marshal(v)
			if err != nil {
				panic(err)
			}
			if event == api.EventLog {
				offset += len(v.(api.LogChunk).Text)
				fmt.Fprintf(w, "id: %d\n", offset)
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
			_ = rc.Flush()
		}
		full := string(text)
		send(api.EventLog, api.LogChunk{Text: full})
		for _, line := range streamedLines {
			// Slow enough that the test sees the text arrive before the end.
			select {
			case <-time.After(400 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			full += line
			send(api.EventLog, api.LogChunk{Text: line})
		}
		src.finish(id, full)
		send(api.EventEnd, api.LogEnd{State: site.OutcomeLive})
	}
}

// consoleProblems collects the page's console errors, uncaught exceptions
// and CSP violations, which a person would never notice.
func consoleProblems(ctx context.Context) func() []string {
	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The test's own wrong token is the one 401 the browser should see.
			if m.Source == "network" && strings.HasSuffix(m.URL, "/login") && strings.Contains(m.Text, "401") {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				problems = append(problems, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

func TestDashboardInChromium(t *testing.T) {
	src := newFakeSource()
	h := New(Options{Source: src, Token: testToken, Now: func() time.Time { return now }})
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/sites/{site}/deploys/{id}/log", fakeLogStream(h, src))
	mux.Handle("/", h)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	ctx := browsertest.New(t)
	problems := consoleProblems(ctx)

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading the text of %s: %v", sel, err)
		}
		return s
	}
	see := func(where, sel string, wants ...string) {
		t.Helper()
		got := text(sel)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s: %s does not show %q; it shows:\n%s", where, sel, want, got)
			}
		}
	}
	waitFor := func(what, js string, timeout time.Duration) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](js,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}

	// Without a session, the overview sends the browser to the login form.
	do(chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if u, err := url.Parse(loc); err != nil || u.Path != "/login" || u.Query().Get("next") != "/" {
		t.Errorf("not logged in, / went to %s, want /login?next=/", loc)
	}
	see("login page", "main", "Log in", "API token")
	browsertest.Screenshot(t, ctx, "dashboard-login")

	// A wrong token is refused; the right one opens the overview.
	do(chromedp.SendKeys(chromedp.CSS("#token"), "guess"),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS(".alert")))
	see("wrong token", "main", "Wrong token.")
	do(chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#sites")))
	see("overview", "main", "blog", "docs", "Synced", "Failed", liveSubject, "Ana Lima", "3 minutes ago",
		"pr-7", "branch-staging", "www.blog.example.org", `ERROR render of "/docs/install" failed`)
	if title, _ := chromedp.Run(ctx, chromedp.Title()); title != "Sites · sitehost" {
		t.Errorf("overview title %q", title)
	}
	browsertest.Screenshot(t, ctx, "dashboard-overview")

	// The overview refreshes itself: a new commit shows up without a reload.
	src.update(func(f *fakeSource) { f.sites[0].Channels[0].Live.Subject = "Add summer recipes post" })
	waitFor("the overview to refresh", `document.querySelector("main").innerText.includes("Add summer recipes post")`, 15*time.Second)

	// The site page lists the channels and the deploy history.
	do(chromedp.Click(chromedp.CSS(`#sites a[href="/sites/blog"]`)), chromedp.WaitVisible(chromedp.CSS("#deploy-history")))
	see("site page", "main", "https://github.com/example/blog.git", "Sync now",
		string(buildingID), string(liveID), string(prID), string(failedID), string(readyID),
		"building", "live", "ready", "failed", "Fix typo in about page", "1.2 s", "open")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#deploy-history tbody tr").length`))
	if err != nil || rows != 5 {
		t.Errorf("deploy history shows %d rows (%v), want 5", rows, err)
	}
	browsertest.Screenshot(t, ctx, "dashboard-site")

	// On a phone the page itself must not scroll sideways: wide tables
	// scroll inside their own box.
	do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`))
	if err != nil || overflow {
		t.Errorf("site page overflows a 390 px wide screen (%v)", err)
	}
	browsertest.Screenshot(t, ctx, "dashboard-site-narrow")
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`)); err != nil || w != 1280 {
		t.Fatalf("window is %d px wide after the phone emulation (%v), want 1280 again", w, err)
	}

	// Dark theme.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(15, 18, 22)" {
		t.Errorf("dark theme body background %q (%v), want rgb(15, 18, 22)", bg, err)
	}
	browsertest.Screenshot(t, ctx, "dashboard-site-dark")
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}

	// Sync now.
	do(chromedp.Click(chromedp.CSS("#sync")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	see("site page after sync", ".notice", "Sync requested.")
	if got := src.triggered(); len(got) != 1 || got[0] != "blog" {
		t.Errorf("Sync now triggered %v, want [blog]", got)
	}

	// A deploy's page shows its detail and its log.
	do(chromedp.Click(chromedp.CSS(`#deploy-history a[href="/sites/blog/deploys/`+string(liveID)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#log")))
	see("deploy page", "main", string(liveID), "live", string(blogSHA), "1.2 s", "61 files, 2.3 MB",
		"_redirects:3: unknown status 309")
	see("deploy page", "#log", "Start building sites", "Total in 1184 ms", "published a1b2c3d4e5f60718 to production")
	browsertest.Screenshot(t, ctx, "dashboard-deploy")

	// A building deploy streams its log, then shows the finished deploy.
	do(chromedp.Navigate(ts.URL + "/sites/blog/deploys/" + string(buildingID)))
	see("building deploy", "#deploy-state", "building")
	waitFor("the streamed log", `document.getElementById("log").textContent.includes("streamed: rendering 42 pages")`, 10*time.Second)
	browsertest.Screenshot(t, ctx, "dashboard-deploy-streaming")
	waitFor("the end of the stream", `document.getElementById("deploy-state").textContent === "live"`, 10*time.Second)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("log").textContent.split("Start building sites").length - 1`)); err != nil || n != 1 {
		t.Errorf("the streamed log shows its beginning %d times (%v), want once", n, err)
	}
	do(chromedp.WaitNotPresent(chromedp.CSS("#log[data-stream]")))
	see("finished deploy", "#deploy-state", "live")
	see("finished deploy", "#log", streamedLines[0], streamedLines[2])
	see("finished deploy", "main", "2.3 s")

	// Log out: the session is gone.
	do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	do(chromedp.Navigate(ts.URL+"/sites/blog"), chromedp.WaitVisible(chromedp.CSS("#token")))

	if p := problems(); len(p) > 0 {
		t.Errorf("the browser console reported problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestDashboardWithoutJavaScript uses the dashboard as a browser with
// scripts off does: forms still log in and sync, and a building deploy's
// page reloads itself until the build ends.
func TestDashboardWithoutJavaScript(t *testing.T) {
	src := newFakeSource()
	h := New(Options{Source: src, Token: testToken, Now: func() time.Time { return now }})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)

	ctx := browsertest.New(t)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	do(chromedp.Navigate(ts.URL+"/sites/blog"),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#deploy-history")),
		chromedp.Click(chromedp.CSS("#sync")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := src.triggered(); len(got) != 1 || got[0] != "blog" {
		t.Errorf("Sync now without JavaScript triggered %v, want [blog]", got)
	}

	do(chromedp.Navigate(ts.URL+"/sites/blog/deploys/"+string(buildingID)), chromedp.WaitVisible(chromedp.CSS("#log[data-stream]")))
	src.finish(buildingID, buildingLog+"Total in 2345 ms\n")
	// The <noscript> refresh comes after 3 s.
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.WaitNotPresent(chromedp.CSS("#log[data-stream]"))); err != nil {
		t.Fatalf("waiting for the page to reload itself: %v", err)
	}
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#deploy-state")))
	if err != nil || s != "live" {
		t.Errorf("after the build ended the page shows %q (%v), want live", s, err)
	}
	browsertest.Screenshot(t, ctx, "dashboard-deploy-nojs")
}
