package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sitehost/sitehost/internal/miniotest"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/s3store"
	"github.com/sitehost/sitehost/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, srv, srv.Bucket(t))
	})
}

func options(srv *miniotest.Server, bucket string) s3store.Options {
	return s3store.Options{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		Region:    "us-east-1",
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
	}
}

func newStore(tb testing.TB, srv *miniotest.Server, bucket string) *s3store.Store {
	tb.Helper()
	s, err := s3store.New(tb.Context(), options(srv, bucket))
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

func TestNewErrors(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	for _, tc := range []struct {
		name   string
		edit   func(*s3store.Options)
		want   []string // substrings of the error
		banned string   // must not appear in the error
	}{
		{
			name: "missing bucket",
			edit: func(o *s3store.Options) { o.Bucket = "no-such-bucket" },
			want: []string{"no-such-bucket", srv.Endpoint, "does not exist", "create it"},
		},
		{
			name:   "wrong secret",
			edit:   func(o *s3store.Options) { o.SecretKey = "wrong-secret-key" },
			want:   []string{bucket, srv.Endpoint, "credentials rejected", srv.AccessKey},
			banned: "wrong-secret-key",
		},
		{
			name: "unknown access key",
			edit: func(o *s3store.Options) { o.AccessKey = "nobody-here" },
			want: []string{"credentials rejected", "nobody-here"},
		},
		{
			name: "missing bucket, no region",
			edit: func(o *s3store.Options) { o.Bucket = "no-such-bucket"; o.Region = "" },
			want: []string{"no-such-bucket", "does not exist"},
		},
		{
			name: "no region",
			edit: func(o *s3store.Options) { o.Region = ""; o.SecretKey = "wrong-secret-key" },
			want: []string{"credentials rejected"},
		},
		{
			name: "no bucket",
			edit: func(o *s3store.Options) { o.Bucket = "" },
			want: []string{"bucket"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := options(srv, bucket)
			tc.edit(&opts)
			s, err := s3store.New(t.Context(), opts)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error", s)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.banned != "" && strings.Contains(err.Error(), tc.banned) {
				t.Errorf("error %q reveals %q", err, tc.banned)
			}
		})
	}
	if _, err := s3store.New(t.Context(), options(srv, bucket)); err != nil {
		t.Errorf("New with good options: %v", err)
	}
}

// TestOutage stops the server: calls must fail soon with an error that is
// not ErrNotFound (the key may well exist), then work again once it is back.
func TestOutage(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv, srv.Bucket(t))
	ctx := t.Context()
	const key = "sites/blog/channels/production.json"
	v1, err := s.Put(ctx, key, strings.NewReader("v1"), 2, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	calls := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"Stat", func(ctx context.Context) error { _, err := s.Stat(ctx, key); return err }},
		{"Get", func(ctx context.Context) error {
			obj, _, err := s.Get(ctx, key)
			if err == nil {
				_ = obj.Close()
			}
			return err
		}},
		{"Put", func(ctx context.Context) error {
			_, err := s.Put(ctx, key, strings.NewReader("v2"), 2, store.PutOptions{IfMatch: v1.ETag})
			return err
		}},
		{"List", func(ctx context.Context) error {
			for _, err := range s.List(ctx, "") {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, key) }},
	}
	for _, c := range calls {
		// The deadline only keeps a hang from stalling the test; the call
		// should fail well before it, on the refused connection.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		err := c.fn(ctx)
		cancel()
		t.Logf("%s during outage: %v after %v", c.name, err, time.Since(start).Round(time.Millisecond))
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPrecondition) {
			t.Errorf("%s during outage: error = %v, want a connection error", c.name, err)
		}
	}

	srv.Restart(t)
	info, err := s.Stat(ctx, key)
	if err != nil || info.ETag != v1.ETag {
		t.Fatalf("Stat after outage = %+v, %v; want ETag %q", info, err, v1.ETag)
	}
	if _, err := s.Put(ctx, key, strings.NewReader("v2"), 2, store.PutOptions{IfMatch: v1.ETag}); err != nil {
		t.Errorf("Put after outage: %v", err)
	}
}

// TestBackendDetails checks what the conformance suite cannot see: stored
// metadata, multipart uploads, and reads of an object replaced mid-read.
func TestBackendDetails(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t)
	s := newStore(t, srv, bucket)
	c := srv.Client(t)
	ctx := t.Context()

	t.Run("ContentType", func(t *testing.T) {
		key := "sites/blog/index.html"
		if _, err := s.Put(ctx, key, strings.NewReader("<p>"), 3, store.PutOptions{ContentType: "text/html; charset=utf-8"}); err != nil {
			t.Fatal(err)
		}
		st, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil || st.ContentType != "text/html; charset=utf-8" {
			t.Errorf("stored content type = %q, %v", st.ContentType, err)
		}
	})

	// minio-go turns request errors that mention "EOF" into "connection
	// closed by foreign host"; the store must still blame the body.
	t.Run("ShortBodyError", func(t *testing.T) {
		for _, size := range []int64{10, 30 << 20} {
			_, err := s.Put(ctx, "sites/blog/short", strings.NewReader("abc"), size, store.PutOptions{})
			if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "short") {
				t.Errorf("Put of a short body (size %d): error = %v, want io.ErrUnexpectedEOF", size, err)
			}
		}
	})

	// Bodies above one part go up as multipart uploads: with and without a
	// size, conditional or not.
	big := bytes.Repeat([]byte("0123456789abcdef"), (20<<20)/16)
	for _, tc := range []struct {
		name string
		size int64
		opts store.PutOptions
	}{
		{"MultipartKnownSize", int64(len(big)), store.PutOptions{}},
		{"MultipartUnknownSize", -1, store.PutOptions{}},
		{"MultipartCreateOnly", -1, store.PutOptions{IfNoneMatch: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "blobs/big/" + tc.name
			info, err := s.Put(ctx, key, io.MultiReader(bytes.NewReader(big)), tc.size, tc.opts)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if info.Size != int64(len(big)) {
				t.Errorf("Put size = %d, want %d", info.Size, len(big))
			}
			st, err := s.Stat(ctx, key)
			if err != nil || st.ETag != info.ETag || st.Size != info.Size {
				t.Errorf("Stat = %+v, %v; want ETag %q", st, err, info.ETag)
			}
			if tc.opts.IfNoneMatch {
				_, err := s.Put(ctx, key, bytes.NewReader(big), -1, tc.opts)
				var pe *store.PreconditionError
				if !errors.As(err, &pe) {
					t.Errorf("second create-only multipart Put: error = %v, want a PreconditionError", err)
				}
			}
		})
	}

	t.Run("ReplacedWhileOpen", func(t *testing.T) {
		key := "sites/blog/channels/replaced.json"
		if _, err := s.Put(ctx, key, strings.NewReader("version one"), 11, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		obj, _, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if _, err := s.Put(ctx, key, strings.NewReader("version two"), 11, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		// The seek forces a new ranged request, which must not mix in the
		// new version's bytes.
		if _, err := obj.Seek(8, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(obj); err == nil {
			t.Errorf("read after replacement = %q, want an error", got)
		}
	})
}

func BenchmarkPutSmall(b *testing.B) {
	srv := miniotest.Start(b)
	s := newStore(b, srv, srv.Bucket(b))
	data := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Put(b.Context(), "blobs/bench/small", bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStat(b *testing.B) {
	srv := miniotest.Start(b)
	s := newStore(b, srv, srv.Bucket(b))
	const key = "blobs/bench/stat"
	if _, err := s.Put(b.Context(), key, strings.NewReader("x"), 1, store.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Stat(b.Context(), key); err != nil {
			b.Fatal(err)
		}
	}
}
