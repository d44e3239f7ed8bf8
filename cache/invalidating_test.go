package cache

import "testing"

func TestInvalidationsTellWhichReadsMayHoldADroppedEntry(t *testing.T) {
	const url, other = 1, 2
	v := newInvalidations()
	before := v.mark()
	if v.dropped(url, before) {
		t.Fatal("no invalidation yet, and the read is dropped")
	}
	v.start(url)
	if !v.dropped(url, before) || v.dropped(other, before) {
		t.Fatal("while the invalidation is queued: only its URL's reads are dropped")
	}
	v.finish(url)
	// Redis may have answered a read sent before the deletion: the read is
	// checked after the invalidation finished.
	if !v.dropped(url, before) {
		t.Fatal("a read sent before the invalidation finished was kept")
	}
	if v.dropped(other, before) {
		t.Fatal("another URL's read was dropped")
	}
	if after := v.mark(); v.dropped(url, after) {
		t.Fatal("a read sent after the invalidation finished was dropped")
	}
	for i := range recentInvalidations {
		v.start(uint64(100 + i))
		v.finish(uint64(100 + i))
	}
	if !v.dropped(other, before) {
		t.Fatal("a read that overlapped more invalidations than are kept was not dropped")
	}
}
