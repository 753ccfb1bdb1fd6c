package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sitehost/sitehost/internal/browsertest"
	"github.com/sitehost/sitehost/internal/gittest"
)

// TestDashboardEndToEnd drives the real server's dashboard in headless
// Chromium: after a real Hugo build and a failed one, a person logs in,
// sees the site with its live commit, follows the link to the site, sees
// both deploys, opens the live one and reads its build log.
func TestDashboardEndToEnd(t *testing.T) {
	repo := gittest.New(t, "testdata/blog")
	srv := startServer(t, testConfig(t, t.TempDir(), siteYAML(repo.URL())), nil)
	syncSite(t, srv, "blog")
	live, _ := srv.loop.SiteStatus("blog")
	repo.Write("layouts/page.html", "{{ define \"main\" }}\n{{ .NoSuchMethod }}\n{{ end }}\n")
	repo.Commit("Break the page layout")
	syncSite(t, srv, "blog")

	ctx := browsertest.New(t)
	base := "http://" + srv.adminLn.Addr().String()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	see := func(where string, wants ...string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		if err != nil {
			t.Fatalf("%s: reading the page: %v", where, err)
		}
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s does not show %q; it shows:\n%s", where, want, got)
			}
		}
	}

	run("logging in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken),
		chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#sites")))
	see("the overview", "blog", "Failed", "Initial site", "Ada Author", "blog.test", "layouts/page.html")
	browsertest.Screenshot(t, ctx, "e2e-overview")

	run("following the site link", chromedp.Click(chromedp.CSS(`#sites a[href="/sites/blog"]`)),
		chromedp.WaitVisible(chromedp.CSS("#deploy-history")))
	see("the site page", "Break the page layout", "Initial site", "failed", "live", string(live.LiveDeploy))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#deploy-history tbody tr").length`))
	if err != nil || rows != 2 {
		t.Errorf("deploy history shows %d rows (%v), want 2", rows, err)
	}
	browsertest.Screenshot(t, ctx, "e2e-site")

	run("opening the live deploy", chromedp.Click(chromedp.CSS(`#deploy-history a[href="/sites/blog/deploys/`+string(live.LiveDeploy)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#log")))
	see("the deploy page", string(live.LiveDeploy), "Initial site", "Building with Hugo v", "Live on production at http://blog.test:")
	browsertest.Screenshot(t, ctx, "e2e-deploy")

	// Its permalink opens the deploy itself.
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("main a")].map(a => a.href).find(h => h.includes("--blog.localhost"))`))
	if err != nil || !strings.HasPrefix(href, "http://"+string(live.LiveDeploy)+"--blog.localhost:") {
		t.Fatalf("permalink link %q (%v)", href, err)
	}
	run("opening the permalink", chromedp.Navigate(href), chromedp.WaitReady(chromedp.CSS("body")))
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil || !strings.Contains(body, "Version one") {
		t.Errorf("the permalink shows %q (%v)", body, err)
	}
}
