package browsertest

import (
	"fmt"
	"image"
	"image/color"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestColours(t *testing.T) {
	flat := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range flat.Pix {
		flat.Pix[i] = 0xff
	}
	if n := colours(flat, minColours); n != 1 {
		t.Errorf("flat white image: %d colours, want 1", n)
	}
	ramp := image.NewGray(image.Rect(0, 0, 256, 1))
	for x := range 256 {
		ramp.SetGray(x, 0, color.Gray{Y: uint8(x)})
	}
	if n := colours(ramp, minColours); n != minColours {
		t.Errorf("grey ramp: %d colours, want the limit %d", n, minColours)
	}
}

func TestScreenshot(t *testing.T) {
	ctx := New(t)
	page := "data:text/html," + url.PathEscape(`<!doctype html><title>t</title>
<h1>browsertest</h1><p>Anti-aliased text has many colours.</p>`)
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	img := Screenshot(t, ctx, "browsertest")
	if w := img.Bounds().Dx(); w != 1280 {
		t.Errorf("screenshot is %d pixels wide, want the window's 1280", w)
	}
}

// fatalRecorder notes a Fatalf instead of ending the test, to check that
// Screenshot fails on a blank page.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestScreenshotFailsOnBlankPage(t *testing.T) {
	ctx := New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	rec := &fatalRecorder{TB: t}
	if img := Screenshot(rec, ctx, "blank"); img != nil || rec.msg == "" {
		t.Fatalf("Screenshot of a blank page passed (image %v, message %q)", img != nil, rec.msg)
	}
	t.Logf("blank page refused: %s", rec.msg)
}
