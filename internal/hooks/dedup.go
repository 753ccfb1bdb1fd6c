package hooks

import "sync"

// DefaultDedup is how many recent delivery IDs a Forge handler remembers.
const DefaultDedup = 10000

// deliveries remembers the most recent delivery IDs, oldest evicted first.
// The zero value is ready; capacity is fixed by the first add.
type deliveries struct {
	mu   sync.Mutex
	seen map[string]struct{}
	ring []string // insertion order; ring[next] is the oldest once full
	next int
}

// add records key and reports whether it is new.
func (d *deliveries) add(key string, capacity int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		if capacity <= 0 {
			capacity = DefaultDedup
		}
		d.seen = make(map[string]struct{}, capacity)
		d.ring = make([]string, 0, capacity)
	}
	if _, ok := d.seen[key]; ok {
		return false
	}
	if len(d.ring) < cap(d.ring) {
		d.ring = append(d.ring, key)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = key
		d.next = (d.next + 1) % len(d.ring)
	}
	d.seen[key] = struct{}{}
	return true
}

// forget drops key, so that a redelivery is acted on (after a dispatch
// failed). Its ring slot stays until evicted; evicting it then may drop a
// later add of the same key early, which only costs a duplicate dispatch.
func (d *deliveries) forget(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, key)
}
