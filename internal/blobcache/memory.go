package blobcache

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// memTier is the memory tier: an LRU of verified blobs, capped by the sum
// of their lengths (bookkeeping overhead is not counted).
type memTier struct {
	evictions *atomic.Int64

	mu   sync.Mutex
	cap  int64
	used int64
	ll   *list.List // of *memEntry, most recently used first
	m    map[string]*list.Element
}

type memEntry struct {
	sha  string
	data []byte // read-only: shared by every reader
}

func newMemTier(capBytes int64, evictions *atomic.Int64) *memTier {
	return &memTier{
		evictions: evictions,
		cap:       capBytes,
		ll:        list.New(),
		m:         make(map[string]*list.Element),
	}
}

// get returns the blob's bytes and marks it used.
func (t *memTier) get(sha string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.m[sha]
	if !ok {
		return nil, false
	}
	t.ll.MoveToFront(el)
	return el.Value.(*memEntry).data, true
}

// add keeps data, evicting the least recently used blobs to make room.
func (t *memTier) add(sha string, data []byte) {
	size := int64(len(data))
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.m[sha]; ok {
		t.ll.MoveToFront(el)
		return
	}
	if size > t.cap {
		return
	}
	for t.used+size > t.cap {
		el := t.ll.Back()
		e := el.Value.(*memEntry)
		t.ll.Remove(el)
		delete(t.m, e.sha)
		t.used -= int64(len(e.data))
		t.evictions.Add(1)
	}
	t.m[sha] = t.ll.PushFront(&memEntry{sha: sha, data: data})
	t.used += size
}

func (t *memTier) stats() (int64, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.used, len(t.m)
}
