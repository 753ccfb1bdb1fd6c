// Package buildtest gives build tests what they share: the node Hugo's
// Node tools run on, and real images to process.
package buildtest

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"os"
	"testing"

	"github.com/sitehost/sitehost/internal/build"
)

// Node is the node Hugo's Node tools run on in tests: SITEHOST_NODE
// (.ci/run installs one) or node on PATH, v22.15 or later. Without one the
// test skips, or fails under CI=true.
func Node(t testing.TB) string {
	t.Helper()
	node, err := build.FindNode(context.Background(), os.Getenv("SITEHOST_NODE"), os.Getenv("PATH"), slog.New(slog.DiscardHandler))
	if err != nil || node == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no node v%s or later (SITEHOST_NODE): %v", build.MinNode, err)
		}
		t.Skipf("no node v%s or later (set SITEHOST_NODE): %v", build.MinNode, err)
	}
	return node
}

// PNG is a real w×h PNG; seed varies its pixels, so two seeds are two
// images to Hugo's cache.
func PNG(t testing.TB, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{byte(x) ^ seed, byte(y) + seed, byte(x+y) * seed, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
