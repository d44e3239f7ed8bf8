package cache

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// testEntry builds an entry as a fill would, for key and the given
// response fields and body.
func testEntry(key string, status int, body string, kv ...string) *Entry {
	h := fields(kv...)
	m := ParseMeta(status, h, t0, t0, t0)
	return newEntry([]byte(key), []byte("api.example.com/a"), status, h, []byte(body),
		normaliseVary(h), surrogateKeys(h), &m, Lifetime(&m, Heuristic{}))
}

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    *Entry
	}{
		{"a plain response", testEntry("k1", 200, "hello", "Cache-Control", "max-age=60", "ETag", `"v1"`,
			"Content-Type", "text/plain", "Surrogate-Key", "orders  order-7")},
		{"an empty body and no fields", testEntry("k2", 204, "")},
		{"a Vary index entry", newMarker([]byte("k3"), []byte("h/x"), []byte("accept"), t0)},
		{"a part", testEntry("k4", 206, "4567", "Cache-Control", "max-age=60", "Content-Range", "bytes 4-7/10")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendEntry(nil, tt.e)
			got, err := decodeEntry(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameEntry(got, tt.e) || got.part != tt.e.part {
				t.Errorf("round trip changed the entry\n got %+v\nwant %+v", got, tt.e)
			}
		})
	}
}

// sameEntry compares what an entry carries, treating nil and empty slices
// alike.
func sameEntry(a, b *Entry) bool {
	eq := bytes.Equal
	if !eq(a.Key, b.Key) || a.Status != b.Status || !eq(a.Body, b.Body) || !eq(a.url, b.url) ||
		!eq(a.vary, b.vary) || !eq(a.tags, b.tags) || a.marker != b.marker ||
		!a.RequestTime.Equal(b.RequestTime) || !a.ResponseTime.Equal(b.ResponseTime) ||
		a.initialAge != b.initialAge || a.lifetime != b.lifetime || a.cc != b.cc ||
		!eq(a.etag, b.etag) || len(a.Header) != len(b.Header) {
		return false
	}
	for i := range a.Header {
		if !eq(a.Header[i].Name, b.Header[i].Name) || !eq(a.Header[i].Value, b.Header[i].Value) {
			return false
		}
	}
	return true
}

func TestCodecRejectsDamage(t *testing.T) {
	good := appendEntry(nil, testEntry("key", 200, "body", "ETag", `"x"`, "Cache-Control", "max-age=5"))
	t.Run("every truncation is refused", func(t *testing.T) {
		for n := 0; n < len(good); n++ {
			if _, err := decodeEntry(good[:n]); err == nil {
				t.Fatalf("a value cut to %d of %d bytes decoded", n, len(good))
			}
		}
	})
	t.Run("trailing bytes are refused", func(t *testing.T) {
		if _, err := decodeEntry(append(bytes.Clone(good), 0)); err == nil {
			t.Fatal("a value with a trailing byte decoded")
		}
	})
	t.Run("another version is refused", func(t *testing.T) {
		b := bytes.Clone(good)
		b[2]++
		if _, err := decodeEntry(b); err == nil {
			t.Fatal("a value of another version decoded")
		}
	})
	t.Run("a part that does not say which, or holds other bytes, is refused", func(t *testing.T) {
		for _, e := range []*Entry{
			testEntry("k", 206, "4567", "Cache-Control", "max-age=60"),
			testEntry("k", 206, "4567", "Cache-Control", "max-age=60", "Content-Range", "bytes 4-8/10"),
		} {
			if _, err := decodeEntry(appendEntry(nil, e)); err == nil {
				t.Errorf("a 206 with %q decoded", e.Header)
			}
		}
	})
	t.Run("a lying field count is refused without allocating for it", func(t *testing.T) {
		b := bytes.Clone(good)
		// The field count follows the fixed part and four length-prefixed strings.
		e, _ := decodeEntry(good)
		at := codecHeader + codecFixed + 4*4 + len(e.Key) + len(e.url) + len(e.vary) + len(e.tags)
		b[at], b[at+1], b[at+2], b[at+3] = 0xff, 0xff, 0xff, 0xff
		if _, err := decodeEntry(b); err == nil {
			t.Fatal("a value claiming 4 billion fields decoded")
		}
	})
}

func TestEntryExcludesFields(t *testing.T) {
	e := testEntry("k", 200, "b", "Content-Length", "1", "Age", "4", "Connection", "close",
		"Surrogate-Key", "a b", "X-Kept", "yes")
	want := fields("X-Kept", "yes")
	if !reflect.DeepEqual(e.Header, want) {
		t.Errorf("stored header = %s, want %s", showFields(e.Header), showFields(want))
	}
	if string(e.Tags()) != "a b" {
		t.Errorf("tags = %q", e.Tags())
	}
	if e.initialAge != 4*time.Second {
		t.Errorf("initial age = %v, want 4s from the Age field", e.initialAge)
	}
}
