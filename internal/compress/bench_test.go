package compress

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var negotiateHeaders = []struct{ name, header string }{
	{"chrome", "gzip, deflate, br, zstd"},
	{"safari", "gzip, deflate, br"},
	{"weighted", "br;q=1.0, gzip;q=0.8, *;q=0.1"},
	{"curl", ""},
}

var sink Encoding

func BenchmarkNegotiate(b *testing.B) {
	for _, h := range negotiateHeaders {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = Negotiate(h.header, true, true)
			}
		})
	}
}

// encoder is one level under consideration.
type encoder struct {
	name string
	fn   func(ctx context.Context, dst io.Writer, src io.Reader, size int64) error
}

// encoders lists the levels measured to choose the production ones: gzip 6
// (the zlib default) for reference and 9 (used), brotli 5–11. "brotli-auto"
// is exactly what Encode does.
func encoders() []encoder {
	encs := []encoder{
		{"gzip-6", func(ctx context.Context, dst io.Writer, src io.Reader, _ int64) error {
			return encodeGzip(ctx, dst, src, gzip.DefaultCompression)
		}},
		{"gzip-9", func(ctx context.Context, dst io.Writer, src io.Reader, size int64) error {
			return Encode(ctx, Gzip, Best, dst, src, size)
		}},
	}
	for _, q := range []int{5, 6, 7, 9, 10, 11} {
		encs = append(encs, encoder{"brotli-" + strconv.Itoa(q), func(ctx context.Context, dst io.Writer, src io.Reader, size int64) error {
			return encodeBrotli(ctx, dst, src, q, brotliWindow(size))
		}})
	}
	return append(encs, encoder{"brotli-auto", func(ctx context.Context, dst io.Writer, src io.Reader, size int64) error {
		return Encode(ctx, Brotli, Best, dst, src, size)
	}}, encoder{"brotli-fast", func(ctx context.Context, dst io.Writer, src io.Reader, size int64) error {
		return Encode(ctx, Brotli, Fast, dst, src, size)
	}})
}

// BenchmarkEncode reports throughput (MB/s of input) and ratio
// (compressed/original) per level on the generated corpora.
func BenchmarkEncode(b *testing.B) {
	for _, c := range corpora() {
		benchmarkEncode(b, c.name, c.data)
	}
}

// BenchmarkEncodeFiles does the same for real files: set
// COMPRESS_BENCH_FILES to a list of paths (filepath.SplitList). It is how the
// generated corpora were checked against real HTML, JS, CSS and JSON.
func BenchmarkEncodeFiles(b *testing.B) {
	list := os.Getenv("COMPRESS_BENCH_FILES")
	if list == "" {
		b.Skip("COMPRESS_BENCH_FILES not set")
	}
	for _, p := range filepath.SplitList(list) {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		benchmarkEncode(b, filepath.Base(p), data)
	}
}

func benchmarkEncode(b *testing.B, name string, data []byte) {
	for _, e := range encoders() {
		b.Run(name+"/"+e.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				if err := e.fn(context.Background(), &out, bytes.NewReader(data), int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len())/float64(len(data)), "ratio")
		})
	}
}
