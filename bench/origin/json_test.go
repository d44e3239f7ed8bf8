package origin

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x1f\x7f", "utf8 é ✓", "bad \xff\xfe", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); utf8.ValidString(s) && back != s {
			t.Fatalf("%q round-trips to %q", s, back)
		} else if !utf8.ValidString(s) && utf8.RuneCountInString(back) < utf8.RuneCountInString(want) {
			t.Fatalf("%q lost characters: %q", s, back)
		}
	})
}

func TestEveryOrderIsValidJSON(t *testing.T) {
	ids := []int64{1, 2, 3, 4, 5, 9799, 9800, 10007, 99999, 100000, 1 << 31, 1<<53 - 1, 1 << 53}
	for id := int64(6); id < 20000; id += 7 {
		ids = append(ids, id)
	}
	for _, id := range ids {
		for _, size := range []int{0, 300, 4096} {
			b := appendOrder(nil, id, "", size)
			var doc struct {
				ID int64 `json:"id"`
			}
			if err := json.Unmarshal(b, &doc); err != nil || doc.ID != id {
				t.Fatalf("order %d (size %d): %v, id %d: %s", id, size, err, doc.ID, b)
			}
			if size >= 300 && len(b) != size {
				t.Fatalf("order %d: %d bytes, want %d", id, len(b), size)
			}
		}
	}
}
