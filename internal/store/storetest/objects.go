package storetest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/store"
)

func testRoundTrip(t *testing.T, s store.Store) {
	key := "sites/blog/deploys/0123456789ab.json"
	data := []byte(`{"id":"0123456789ab"}`)
	put := mustPut(t, s, key, data)
	if put.Key != key || put.Size != int64(len(data)) || put.ETag == "" {
		t.Errorf("Put info = %+v, want key %q, size %d, an ETag", put, key, len(data))
	}
	got, info := mustGet(t, s, key)
	if !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ETag != put.ETag || info.ModTime.IsZero() {
		t.Errorf("Get info = %+v, want key %q, size %d, ETag %q, a ModTime", info, key, len(data), put.ETag)
	}
}

func testUnknownSize(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := "sites/blog/logs/abc.log"
	data := []byte("line 1\nline 2\n")
	// Hide the length: a backend must not need it when size is -1.
	r := io.MultiReader(bytes.NewReader(data[:3]), bytes.NewReader(data[3:]))
	info, err := s.Put(ctx, key, r, -1, store.PutOptions{ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("Put(size -1): %v", err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Put(size -1) size = %d, want %d", info.Size, len(data))
	}
	if got, _ := mustGet(t, s, key); !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
}

func testStat(t *testing.T, s store.Store) {
	key := "sites/blog/builds/k1"
	data := []byte("0123456789ab")
	put := mustPut(t, s, key, data)
	info := mustStat(t, s, key)
	if info.Key != key || info.Size != int64(len(data)) || info.ETag != put.ETag || info.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key %q, size %d, ETag %q, a ModTime", info, key, len(data), put.ETag)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "file", []byte("x"))
	for _, key := range []string{"missing", "sites/none/channels/production.json", "file/below"} {
		if _, _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
		}
	}
}

func testOverwriteChangesETag(t *testing.T, s store.Store) {
	key := "sites/blog/channels/production.json"
	v1 := mustPut(t, s, key, []byte("version 1"))
	v2 := mustPut(t, s, key, []byte("version two"))
	if v1.ETag == v2.ETag {
		t.Errorf("ETag unchanged by overwrite: %q", v1.ETag)
	}
	got, info := mustGet(t, s, key)
	if string(got) != "version two" || info.Size != int64(len("version two")) || info.ETag != v2.ETag {
		t.Errorf("after overwrite Get = %q, %+v; want %q with ETag %q", got, info, "version two", v2.ETag)
	}
}

func testETagStable(t *testing.T, s store.Store) {
	key := "blobs/ab/ab01"
	put := mustPut(t, s, key, []byte("blob"))
	for i := range 3 {
		if info := mustStat(t, s, key); info.ETag != put.ETag {
			t.Errorf("Stat #%d ETag = %q, want %q", i, info.ETag, put.ETag)
		}
	}
	if _, info := mustGet(t, s, key); info.ETag != put.ETag {
		t.Errorf("Get ETag = %q, want %q", info.ETag, put.ETag)
	}
	if infos := listInfos(t, s, key); len(infos) != 1 || infos[0].ETag != put.ETag {
		t.Errorf("List(%q) = %+v, want one object with ETag %q", key, infos, put.ETag)
	}
}

func testSeek(t *testing.T, s store.Store) {
	key := "blobs/5e/5eek"
	data := pseudoRandom(10_000)
	mustPut(t, s, key, data)
	obj, _, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer obj.Close()

	if n, err := obj.Seek(0, io.SeekEnd); err != nil || n != int64(len(data)) {
		t.Fatalf("Seek(0, SeekEnd) = %d, %v; want %d", n, err, len(data))
	}
	readAt := func(off int64, whence, n int, want []byte) {
		t.Helper()
		if _, err := obj.Seek(off, whence); err != nil {
			t.Fatalf("Seek(%d, %d): %v", off, whence, err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(obj, got); err != nil {
			t.Fatalf("reading %d bytes after Seek(%d, %d): %v", n, off, whence, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("bytes after Seek(%d, %d) differ", off, whence)
		}
	}
	readAt(4000, io.SeekStart, 1000, data[4000:5000])
	readAt(-100, io.SeekEnd, 100, data[len(data)-100:])
	readAt(0, io.SeekStart, 10, data[:10])
	readAt(5, io.SeekCurrent, 10, data[15:25])
	if _, err := obj.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if n, err := obj.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("Read at end = %d, %v; want 0, io.EOF", n, err)
	}
}

// testServeContent checks that an Object is all http.ServeContent needs to
// answer range requests.
func testServeContent(t *testing.T, s store.Store) {
	key := "blobs/5e/5erve"
	data := pseudoRandom(5000)
	mustPut(t, s, key, data)
	for _, tc := range []struct {
		rng    string
		status int
		want   []byte
	}{
		{"", http.StatusOK, data},
		{"bytes=100-199", http.StatusPartialContent, data[100:200]},
		{"bytes=-10", http.StatusPartialContent, data[len(data)-10:]},
		{"bytes=4990-", http.StatusPartialContent, data[4990:]},
	} {
		obj, info, err := s.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		req := httptest.NewRequest(http.MethodGet, "/page.bin", nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "page.bin", info.ModTime, obj)
		_ = obj.Close()
		if rec.Code != tc.status || !bytes.Equal(rec.Body.Bytes(), tc.want) {
			t.Errorf("Range %q: status %d, %d bytes; want %d, %d bytes", tc.rng, rec.Code, rec.Body.Len(), tc.status, len(tc.want))
		}
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := "sites/blog/deploys/0123456789ab.json"
	mustPut(t, s, key, []byte("{}"))
	mustPut(t, s, key+".bak", []byte("{}"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat after Delete: error = %v, want ErrNotFound", err)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{key + ".bak"}) {
		t.Errorf("List after Delete = %q, want only the sibling", got)
	}
	for _, k := range []string{key, "never/existed", "sites/blog"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v, want nil", k, err)
		}
	}
	// A deleted key can be created again, also create-only.
	if _, err := s.Put(ctx, key, strings.NewReader("{}"), 2, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Errorf("create-only Put after Delete: %v", err)
	}
}

func testEmpty(t *testing.T, s store.Store) {
	key := "sites/blog/logs/empty.log"
	info := mustPut(t, s, key, nil)
	if info.Size != 0 || info.ETag == "" {
		t.Errorf("Put of 0 bytes: %+v, want size 0 and an ETag", info)
	}
	got, ginfo := mustGet(t, s, key)
	if len(got) != 0 || ginfo.Size != 0 {
		t.Errorf("Get of empty object = %d bytes, size %d; want 0", len(got), ginfo.Size)
	}
	if keys := listKeys(t, s, "sites/"); !slices.Equal(keys, []string{key}) {
		t.Errorf("List = %q, want [%s]", keys, key)
	}
}

func testLarge(t *testing.T, s store.Store) {
	key := "blobs/1m/1mib"
	data := pseudoRandom(1 << 20)
	info := mustPut(t, s, key, data)
	if info.Size != 1<<20 {
		t.Errorf("Put size = %d, want %d", info.Size, 1<<20)
	}
	if got, _ := mustGet(t, s, key); !bytes.Equal(got, data) {
		t.Errorf("Get of 1 MiB object: %d bytes, content differs", len(got))
	}
}

func testUnicodeKeys(t *testing.T, s store.Store) {
	keys := []string{
		"sites/blög/déploys/日本語.json",
		"sites/with space/file name.txt",
		"sites/with space/ leading and trailing ",
		"sites/emoji/🙂.html",
	}
	for _, k := range keys {
		mustPut(t, s, k, []byte(k))
	}
	for _, k := range keys {
		if got, info := mustGet(t, s, k); string(got) != k || info.Key != k {
			t.Errorf("Get(%q) = %q (key %q)", k, got, info.Key)
		}
	}
	want := slices.Sorted(slices.Values(keys))
	if got := listKeys(t, s, "sites/"); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := listKeys(t, s, "sites/with space/"); len(got) != 2 {
		t.Errorf(`List("sites/with space/") = %q, want 2 keys`, got)
	}
}
