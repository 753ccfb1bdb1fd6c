package manifest_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitehost/sitehost/internal/manifest"
	"github.com/sitehost/sitehost/internal/site"
	"github.com/sitehost/sitehost/internal/store"
	"github.com/sitehost/sitehost/internal/store/fsstore"
)

// TestKeys: the storage layout is a contract with the data already stored
// (DESIGN §6).
func TestKeys(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for _, tc := range []struct{ got, want string }{
		{manifest.BlobKey(sha), "blobs/ab/" + sha},
		{manifest.ManifestKey("blog", "0123456789abcdef"), "sites/blog/deploys/0123456789abcdef.json"},
		{manifest.BuildKeyKey("blog", sha), "sites/blog/builds/" + sha},
		{manifest.PointerKey("blog", "pr-7"), "sites/blog/channels/pr-7.json"},
		{manifest.ChannelsPrefix("blog"), "sites/blog/channels/"},
		{manifest.LogKey("blog", "0123456789abcdef"), "sites/blog/logs/0123456789abcdef.log"},
		{string(manifest.DeployIDFor(sha)), sha[:site.DeployIDLen]},
	} {
		if tc.got != tc.want {
			t.Errorf("key %q, want %q", tc.got, tc.want)
		}
	}
}

func put(t *testing.T, st store.Store, key, body string) {
	t.Helper()
	if _, err := st.Put(t.Context(), key, bytes.NewReader([]byte(body)), int64(len(body)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestReader reads pointers written before and after events, lists
// channels, and tells missing from corrupt.
func TestReader(t *testing.T) {
	st, err := fsstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := manifest.NewReader(st)
	const id = site.DeployID("0123456789abcdef")
	commit := strings.Repeat("1", 40)
	put(t, st, manifest.PointerKey("blog", site.Production),
		`{"deploy":"`+string(id)+`","commit":"`+commit+`","published_at":"2024-05-06T07:08:09Z","previous":"fedcba9876543210"}`)
	put(t, st, manifest.PointerKey("blog", "pr-3"),
		`{"deploy":"`+string(id)+`","commit":"`+commit+`","published_at":"2024-05-06T07:08:09Z",`+
			`"events":[{"kind":"reused","commit":"`+commit+`","commit_info":{"subject":"Revert"},"deploy":"`+string(id)+`","at":"2024-05-06T07:08:09Z"}]}`)
	put(t, st, manifest.PointerKey("blog", "branch-x"), `{"deploy": broken`)
	put(t, st, manifest.ManifestKey("blog", id), `{"id":"`+string(id)+`","site":"blog","files":{"index.html":{"sha256":"`+strings.Repeat("c", 64)+`","size":3,"type":"text/html"}}}`)

	old, err := r.Pointer(t.Context(), "blog", site.Production)
	if err != nil || old.Deploy != id || old.Previous != "fedcba9876543210" || !old.PublishedAt.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || old.Events != nil {
		t.Errorf("pointer from before events = %+v, %v", old, err)
	}
	if _, ok := old.Current(); ok {
		t.Error("Current() of a pointer without events: ok")
	}
	ptr, err := r.Pointer(t.Context(), "blog", "pr-3")
	if ev, ok := ptr.Current(); err != nil || !ok || ev.Kind != manifest.Reused || ev.Info.Subject != "Revert" {
		t.Errorf("pointer with an event = %+v, %v", ptr, err)
	}
	if _, err := r.Pointer(t.Context(), "blog", "branch-x"); !errors.Is(err, manifest.ErrCorrupt) {
		t.Errorf("corrupt pointer: err = %v, want ErrCorrupt", err)
	}
	if _, err := r.Pointer(t.Context(), "blog", "pr-9"); !errors.Is(err, manifest.ErrNotFound) {
		t.Errorf("missing pointer: err = %v, want ErrNotFound", err)
	}
	if _, err := r.Channels(t.Context(), "blog"); !errors.Is(err, manifest.ErrCorrupt) {
		t.Errorf("Channels with a corrupt pointer: err = %v, want ErrCorrupt", err)
	}
	m, err := r.Manifest(t.Context(), "blog", id)
	if f, ok := m.Lookup("index.html"); err != nil || !ok || f.Size != 3 {
		t.Errorf("manifest = %+v, %v", m, err)
	}
	for _, bad := range []site.DeployID{"nope", "../x", "fedcba9876543210"} {
		if _, err := r.Manifest(t.Context(), "blog", bad); !errors.Is(err, manifest.ErrNotFound) {
			t.Errorf("Manifest(%q): err = %v, want ErrNotFound", bad, err)
		}
	}
	if _, err := r.OpenBlob(t.Context(), "../../etc/passwd"); !errors.Is(err, manifest.ErrNotFound) {
		t.Errorf("OpenBlob of a bad name: err = %v, want ErrNotFound", err)
	}
	if _, err := r.Log(t.Context(), "blog", id); !errors.Is(err, manifest.ErrNotFound) {
		t.Errorf("missing log: err = %v, want ErrNotFound", err)
	}
}
