package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/store"
)

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "a/b", []byte("x"))
	for _, key := range []string{"", "/abs", "a/../b", "a//b", "a/./b", "dir/", ".", "..", "a/..", "./a/b", "a\\b", "a\x00b"} {
		if _, err := s.Put(ctx, key, strings.NewReader("x"), 1, store.PutOptions{}); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", key)
		}
		if _, _, err := s.Get(ctx, key); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want an invalid-key error", key, err)
		}
		if _, err := s.Stat(ctx, key); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want an invalid-key error", key, err)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded, want an error", key)
		}
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"a/b"}) {
		t.Errorf("after invalid Puts, List = %q, want [a/b]", got)
	}
	if got, _ := mustGet(t, s, "a/b"); string(got) != "x" {
		t.Errorf("a/b = %q, want %q", got, "x")
	}
}

func testCancelled(t *testing.T, s store.Store) {
	key := "sites/blog/channels/production.json"
	mustPut(t, s, key, []byte("v1"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if _, err := s.Put(ctx, "sites/blog/new", strings.NewReader("x"), 1, store.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put: error = %v, want context.Canceled", err)
	}
	if _, err := s.Put(ctx, key, strings.NewReader("v2"), 2, store.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put over existing: error = %v, want context.Canceled", err)
	}
	obj, _, err := s.Get(ctx, key)
	if err == nil {
		_ = obj.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Get: error = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat: error = %v, want context.Canceled", err)
	}
	var listErr error
	for _, err := range s.List(ctx, "") {
		if err != nil {
			listErr = err
			break
		}
	}
	if !errors.Is(listErr, context.Canceled) {
		t.Errorf("List: error = %v, want context.Canceled", listErr)
	}
	if err := s.Delete(ctx, key); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete: error = %v, want context.Canceled", err)
	}

	if _, err := s.Stat(t.Context(), "sites/blog/new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelled Put created the key: Stat error = %v", err)
	}
	if got, _ := mustGet(t, s, key); string(got) != "v1" {
		t.Errorf("after cancelled calls, content = %q, want %q", got, "v1")
	}
}

// testCancelledMidBody cancels the ctx while the body is being read.
func testCancelledMidBody(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	key := "blobs/ca/cancel"
	const size = 4 << 20
	r := &cancellingReader{r: bytes.NewReader(pseudoRandom(size)), cancel: cancel}
	if _, err := s.Put(ctx, key, r, size, store.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put cancelled mid-body: error = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after cancelled Put, Stat error = %v, want ErrNotFound", err)
	}
}

// cancellingReader cancels its ctx after its first Read.
type cancellingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	defer c.cancel()
	return c.r.Read(p)
}

// testShortBody: a body shorter than the declared size fails the Put and
// leaves no partial object (and the old object, if any, intact).
func testShortBody(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, opts := range []store.PutOptions{{}, {IfNoneMatch: true}} {
		key := fmt.Sprintf("sites/blog/short-%t", opts.IfNoneMatch)
		if _, err := s.Put(ctx, key, strings.NewReader("abc"), 10, opts); err == nil {
			t.Errorf("Put(size 10, 3-byte body, %+v) succeeded, want an error", opts)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after short Put, Stat(%q) error = %v, want ErrNotFound", key, err)
		}
	}
	key := "sites/blog/existing"
	v1 := mustPut(t, s, key, []byte("old content"))
	if _, err := s.Put(ctx, key, strings.NewReader("new"), 100, store.PutOptions{IfMatch: v1.ETag}); err == nil {
		t.Error("short Put over existing succeeded, want an error")
	}
	if got, info := mustGet(t, s, key); string(got) != "old content" || info.ETag != v1.ETag {
		t.Errorf("after short Put, object = %q (ETag %q), want the old one (%q)", got, info.ETag, v1.ETag)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{key}) {
		t.Errorf("after short Puts, List = %q, want [%s]", got, key)
	}
}
