package compress

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
)

// ErrUnknownEncoding is returned by Encode for an Encoding it cannot produce.
var ErrUnknownEncoding = errors.New("compress: unknown encoding")

// chunkSize is how much input is fed to the compressor between ctx checks.
// Brotli at quality 9–11 compresses in input blocks of up to 256 KiB, so
// together with brotliLargeFile this bounds the work done after a cancel to
// roughly half a second.
const chunkSize = 64 << 10

// Brotli qualities by file size; brotliQuality explains the choice.
const (
	brotliMaxQuality   = 11
	brotliLargeQuality = 9
	// brotliLargeFile is the largest file compressed at brotliMaxQuality.
	brotliLargeFile = 256 << 10
)

// brotliQuality picks the brotli quality for a file of the given size
// (negative: unknown).
//
// Measured with BenchmarkEncode (this pure-Go encoder, one core, AMD EPYC):
// quality 11 runs at ~0.5 MB/s whatever the input, quality 10 at 1.1–1.7,
// quality 9 at 5–20, and gzip 9 at 13–45. On generated HTML/JS/JSON, and on
// real pages and bundles, quality 11 output is 7–11% smaller than quality 9
// and 10–24% smaller than gzip 9; quality 10 gets most of the way (1–4%
// behind 11) at 2.5–3× the speed.
//
// Files are compressed once per content hash and served many times, so
// quality 11 is worth its cost where the cost is bounded: up to 256 KiB,
// which covers HTML pages and most CSS and JS, it takes at most ~0.5 s per
// file (a 30 KiB page ~55 ms). Above that the time grows linearly (2 MiB
// takes 4.5 s and allocates 200 MB), so a site with tens of MB of search
// indexes, data files or bundles would spend minutes on them; quality 9 does
// 2 MiB in ~0.4 s and is still 9–17% smaller than gzip 9 there. An unknown size is treated as large, since it bounds
// nothing.
func brotliQuality(size int64) int {
	if size < 0 || size > brotliLargeFile {
		return brotliLargeQuality
	}
	return brotliMaxQuality
}

// brotliWindow returns the log2 window size for a file of the given size:
// the smallest window that still covers the whole file, so compression is
// identical to the default 4 MiB window while the encoder (whose quality
// 10–11 match finder allocates in proportion to the window: 37 MB → 4 MB for
// a 30 KiB page) and every client's decoder use far less memory on small
// files. 0 asks for the library default.
func brotliWindow(size int64) int {
	const minBits, maxBits = 10, 22 // brotli's range without "large window"
	if size < 0 {
		return 0
	}
	bits := minBits
	// The usable window is (1<<bits)-16 bytes.
	for bits < maxBits && int64(1)<<bits-16 < size {
		bits++
	}
	return bits
}

// Level trades compression time for size.
type Level int

const (
	// Best: gzip 9, brotli 11 up to 256 KiB and 9 above (brotliQuality).
	Best Level = iota
	// Fast: gzip 6 and brotli 5, 25–60 MB/s: for a deploy that changes
	// hundreds of pages at once (a Hugo site whose every page lists the
	// newest posts), where quality 11's 0.5 MB/s would hold the publish up
	// for minutes. Brotli 5 is still a few percent smaller than gzip 9.
	Fast
)

// brotliFastQuality is Fast's brotli quality.
const brotliFastQuality = 5

// Encode writes src compressed with enc at level to dst. size is the length
// of src, or -1 if unknown; it only tunes the brotli quality and window.
// Identity copies src unchanged. The output is deterministic (no gzip name or mtime),
// so identical files produce identical, content-addressable variants.
//
// Encode checks ctx before each chunk of input, so a long compression can be
// cancelled; on any error dst holds a truncated stream and must be discarded.
func Encode(ctx context.Context, enc Encoding, level Level, dst io.Writer, src io.Reader, size int64) error {
	switch {
	case enc == Identity:
		return encode(ctx, enc, nopCloser{dst}, src)
	case enc == Gzip && level == Fast:
		return encodeGzip(ctx, dst, src, gzip.DefaultCompression)
	case enc == Gzip:
		return encodeGzip(ctx, dst, src, gzip.BestCompression)
	case enc == Brotli && level == Fast:
		return encodeBrotli(ctx, dst, src, brotliFastQuality, brotliWindow(size))
	case enc == Brotli:
		return encodeBrotli(ctx, dst, src, brotliQuality(size), brotliWindow(size))
	}
	return fmt.Errorf("encoding %q: %w", string(enc), ErrUnknownEncoding)
}

func encodeGzip(ctx context.Context, dst io.Writer, src io.Reader, level int) error {
	zw, err := gzip.NewWriterLevel(dst, level)
	if err != nil {
		return fmt.Errorf("creating gzip writer: %w", err)
	}
	return encode(ctx, Gzip, zw, src)
}

func encodeBrotli(ctx context.Context, dst io.Writer, src io.Reader, quality, lgwin int) error {
	bw := brotli.NewWriterOptions(dst, brotli.WriterOptions{Quality: quality, LGWin: lgwin})
	return encode(ctx, Brotli, bw, src)
}

// encode pumps src through w chunk by chunk, checking ctx in between, and
// closes w to finish the stream.
func encode(ctx context.Context, enc Encoding, w io.WriteCloser, src io.Reader) error {
	buf := make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("compressing %s: %w", enc, err)
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("compressing %s: %w", enc, err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading source for %s: %w", enc, rerr)
		}
	}
	// Close compresses the last block, which at brotli 11 is real work:
	// give a cancel that arrived during the final read a chance first.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compressing %s: %w", enc, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("finishing %s stream: %w", enc, err)
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
