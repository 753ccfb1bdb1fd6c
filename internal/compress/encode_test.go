package compress

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/andybalholm/brotli"
)

func decode(t *testing.T, enc Encoding, data []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case Identity:
		return data
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("opening gzip stream: %v", err)
		}
		r = zr
	case Brotli:
		r = brotli.NewReader(bytes.NewReader(data))
	default:
		t.Fatalf("no decoder for %v", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %v: %v", enc, err)
	}
	return out
}

func TestEncodeRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"short text", []byte("<!doctype html><title>hi</title><p>hello, world</p>\n")},
		// Not a multiple of chunkSize, to cover a partial last chunk.
		{"several chunks", bytes.Repeat([]byte("body { margin: 0 auto; } .x-123 { color: #abc }\n"), 3*chunkSize/47)},
		{"binary", func() []byte {
			b := make([]byte, 3*chunkSize+17)
			for i := range b {
				b[i] = byte(i * 7919 >> 3)
			}
			return b
		}()},
	}
	for _, c := range corpora()[:2] { // the 2 MiB one is slow at quality 11
		inputs = append(inputs, struct {
			name string
			data []byte
		}{c.name, c.data})
	}
	for _, enc := range []Encoding{Identity, Gzip, Brotli} {
		for _, in := range inputs {
			for _, size := range []int64{int64(len(in.data)), -1} {
				name := enc.String() + "/" + in.name
				if size < 0 {
					name += "/unknown size"
				}
				t.Run(name, func(t *testing.T) {
					var out bytes.Buffer
					// OneByteReader exercises short reads from src.
					src := io.Reader(bytes.NewReader(in.data))
					if len(in.data) < 100 {
						src = iotest.OneByteReader(src)
					}
					if err := Encode(context.Background(), enc, Best, &out, src, size); err != nil {
						t.Fatalf("Encode: %v", err)
					}
					if got := decode(t, enc, out.Bytes()); !bytes.Equal(got, in.data) {
						t.Fatalf("round trip mismatch: got %d bytes, want %d", len(got), len(in.data))
					}
				})
			}
		}
	}
}

// TestEncodeDeterministic guards content addressing: the same file must
// produce the same variant bytes on every publish.
func TestEncodeDeterministic(t *testing.T) {
	data := corpora()[0].data
	for _, enc := range []Encoding{Gzip, Brotli} {
		var a, b bytes.Buffer
		for _, out := range []*bytes.Buffer{&a, &b} {
			if err := Encode(context.Background(), enc, Best, out, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatalf("Encode(%v): %v", enc, err)
			}
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("Encode(%v) is not deterministic", enc)
		}
	}
}

func TestEncodeCompresses(t *testing.T) {
	for _, c := range corpora()[:2] {
		for _, enc := range []Encoding{Gzip, Brotli} {
			var size [2]int
			for _, level := range []Level{Best, Fast} {
				var out bytes.Buffer
				if err := Encode(context.Background(), enc, level, &out, bytes.NewReader(c.data), int64(len(c.data))); err != nil {
					t.Fatalf("Encode(%v, %d, %s): %v", enc, level, c.name, err)
				}
				if ratio := float64(out.Len()) / float64(len(c.data)); ratio > KeepRatio {
					t.Errorf("Encode(%v, %d, %s) ratio %.3f, want <= %v", enc, level, c.name, ratio, KeepRatio)
				}
				if got := decode(t, enc, out.Bytes()); !bytes.Equal(got, c.data) {
					t.Errorf("Encode(%v, %d, %s) does not round-trip", enc, level, c.name)
				}
				size[level] = out.Len()
			}
			if size[Best] > size[Fast] {
				t.Errorf("%v on %s: Best gives %d bytes, Fast %d", enc, c.name, size[Best], size[Fast])
			}
		}
	}
}

func TestEncodeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, enc := range []Encoding{Identity, Gzip, Brotli} {
		t.Run(enc.String(), func(t *testing.T) {
			err := Encode(ctx, enc, Best, io.Discard, strings.NewReader("hello"), 5)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Encode with cancelled ctx = %v, want context.Canceled", err)
			}
		})
	}
}

// cancelAfter cancels its context once n bytes have been read through it,
// to show Encode stops mid-stream rather than only checking at the start.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestEncodeCancelledMidStream(t *testing.T) {
	data := bytes.Repeat([]byte("<p>lorem ipsum dolor sit amet</p>\n"), 20*chunkSize/34)
	for _, enc := range []Encoding{Identity, Gzip, Brotli} {
		t.Run(enc.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src := &cancelAfter{r: bytes.NewReader(data), n: 2 * chunkSize, cancel: cancel}
			var out bytes.Buffer
			err := Encode(ctx, enc, Best, &out, src, int64(len(data)))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Encode = %v, want context.Canceled", err)
			}
			if read := 2*chunkSize - src.n; read > 3*chunkSize {
				t.Errorf("read %d of %d bytes, want Encode to stop within a chunk of the cancel", read, len(data))
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	errRead := errors.New("disk on fire")
	errWrite := errors.New("store full")
	tests := []struct {
		name string
		enc  Encoding
		dst  io.Writer
		src  io.Reader
		want error
	}{
		{"unknown encoding", Encoding("zstd"), io.Discard, strings.NewReader("x"), ErrUnknownEncoding},
		{"read error gzip", Gzip, io.Discard, iotest.ErrReader(errRead), errRead},
		{"read error brotli", Brotli, io.Discard, iotest.ErrReader(errRead), errRead},
		{"read error identity", Identity, io.Discard, iotest.ErrReader(errRead), errRead},
		{"write error gzip", Gzip, errWriter{errWrite}, strings.NewReader("hello"), errWrite},
		{"write error brotli", Brotli, errWriter{errWrite}, strings.NewReader("hello"), errWrite},
		{"write error identity", Identity, errWriter{errWrite}, strings.NewReader("hello"), errWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Encode(context.Background(), tt.enc, Best, tt.dst, tt.src, -1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %v, want %v", err, tt.want)
			}
		})
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestBrotliQuality(t *testing.T) {
	tests := []struct {
		size int64
		want int
	}{
		{-1, brotliLargeQuality},
		{0, brotliMaxQuality},
		{30 << 10, brotliMaxQuality},
		{brotliLargeFile, brotliMaxQuality},
		{brotliLargeFile + 1, brotliLargeQuality},
		{100 << 20, brotliLargeQuality},
	}
	for _, tt := range tests {
		if got := brotliQuality(tt.size); got != tt.want {
			t.Errorf("brotliQuality(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

func TestBrotliWindow(t *testing.T) {
	tests := []struct {
		size int64
		want int
	}{
		{-1, 0},
		{0, 10},
		{1008, 10}, // (1<<10)-16
		{1009, 11},
		{30 << 10, 15},
		{(1 << 16) - 16, 16},
		{1 << 16, 17},
		{4<<20 - 16, 22},
		{100 << 20, 22},
	}
	for _, tt := range tests {
		if got := brotliWindow(tt.size); got != tt.want {
			t.Errorf("brotliWindow(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}
