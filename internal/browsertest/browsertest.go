// Package browsertest runs headless Chromium for tests through chromedp,
// and captures screenshots a person can look at. Tests only.
//
// The browser is found as $CHROMIUM, or chromium, chromium-browser or
// google-chrome on PATH (Debian: apt-get install chromium). Without one,
// New skips the test, except in CI (CI=true), where a skipped test would
// prove nothing.
package browsertest

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// timeout bounds a test's whole browser session, so a page that never
	// loads fails the test instead of hanging it.
	timeout = 60 * time.Second
	// minColours: a rendered page has text with anti-aliased edges, so
	// hundreds of colours; a blank or failed render has one or two.
	minColours = 16

	installHint = "install Chromium (Debian: apt-get install chromium), or set CHROMIUM to its path"
)

// binary finds the browser, or returns "".
func binary() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts headless Chromium for t and returns a chromedp context (closed at t.Cleanup).
// Without a chromium binary it skips, except under CI=true (env), where it fails: a skipped test proves nothing.
func New(t testing.TB) context.Context {
	t.Helper()
	bin := binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("browsertest: Chromium is required in CI: " + installHint)
		}
		t.Skip("browsertest: no Chromium: " + installHint)
	}

	// The timeout is the allocator's parent, so it ends the browser itself
	// and with it every action still waiting.
	timeoutCtx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // containers run tests as root, where the sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is 64 MB in Docker
		chromedp.WindowSize(1280, 900),
		chromedp.NoFirstRun,
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeoutCtx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser() // closes the tab and the browser, and waits for them
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser now, so a browser that cannot start fails here
	// with its path rather than in the test's first action.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v", bin, err)
	}
	return ctx
}

// Screenshot captures the full page as PNG, writes it to $SITEHOST_ARTIFACTS/<name>.png when that env var is set
// (so a person can look at it), and fails t unless it decodes and is not blank (many distinct colours, not one flat colour).
func Screenshot(t testing.TB, ctx context.Context, name string) image.Image {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Fatalf("browsertest: taking screenshot %s: %v", name, err)
		return nil
	}
	// Save it before checking it, so a blank screenshot can be looked at.
	if dir := os.Getenv("SITEHOST_ARTIFACTS"); dir != "" {
		path := filepath.Join(dir, name+".png")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("browsertest: saving screenshot: %v", err)
			return nil
		}
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatalf("browsertest: saving screenshot: %v", err)
			return nil
		}
		t.Logf("browsertest: screenshot %s", path)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("browsertest: decoding screenshot %s: %v", name, err)
		return nil
	}
	if n := colours(img, minColours); n < minColours {
		t.Fatalf("browsertest: screenshot %s (%dx%d) looks blank: %d distinct colours, want at least %d",
			name, img.Bounds().Dx(), img.Bounds().Dy(), n, minColours)
		return nil
	}
	return img
}

// colours counts the distinct colours in img, stopping at limit.
func colours(img image.Image, limit int) int {
	seen := make(map[[4]uint32]struct{}, limit)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = struct{}{}
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
