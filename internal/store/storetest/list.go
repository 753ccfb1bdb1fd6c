package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/sitehost/sitehost/internal/store"
)

func testList(t *testing.T, s store.Store) {
	// "-" and "." sort before "/", so "sites/blog-2/…" and "sites/blog.txt"
	// come before "sites/blog/…" in key order: a backend that walks folders
	// in name order gets this wrong.
	keys := []string{
		"blobs/ab/ab01",
		"blobs/ab/ab02",
		"blobs/cd/cd01",
		"sites/blog/channels/production.json",
		"sites/blog/deploys/0123456789ab.json",
		"sites/blog/deploys/ba9876543210.json",
		"sites/blog-2/deploys/aaaaaaaaaaaa.json",
		"sites/blog.txt",
		"sites/blogger/builds/k",
		"sites/docs/channels/production.json",
		"top",
	}
	etags := map[string]string{}
	for i, k := range keys {
		etags[k] = mustPut(t, s, k, []byte(strings.Repeat("x", i))).ETag
	}
	for _, prefix := range []string{
		"", "sites/", "sites/bl", "sites/blog", "sites/blog/", "sites/blog/deploys/",
		"blobs/ab/ab01", "blobs/", "t", "s",
		"nope/", "sites/none", "top/", "sites/blog.txt/", "zzz", "../", "/sites/",
	} {
		var want []string
		for _, k := range slices.Sorted(slices.Values(keys)) {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		infos := listInfos(t, s, prefix)
		var got []string
		for _, info := range infos {
			got = append(got, info.Key)
			i := slices.Index(keys, info.Key)
			if i >= 0 && (info.Size != int64(i) || info.ETag != etags[info.Key]) {
				t.Errorf("List(%q): %+v, want size %d, ETag %q", prefix, info, i, etags[info.Key])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func testListStopEarly(t *testing.T, s store.Store) {
	for _, k := range []string{"a/1", "a/2", "b/1", "c"} {
		mustPut(t, s, k, []byte(k))
	}
	var got []string
	for info, err := range s.List(t.Context(), "") {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got = append(got, info.Key)
		if len(got) == 2 {
			break // the iterator must not call yield again
		}
	}
	if !slices.Equal(got, []string{"a/1", "a/2"}) {
		t.Errorf("List then break = %q, want [a/1 a/2]", got)
	}
}
