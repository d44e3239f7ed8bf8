package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzOriginJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x1f\x7f", "utf8 é ✓", "bad \xff\xfe", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := originAppendJSONString(nil, s)
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

func TestOriginParseHeaders(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []OriginHeader
	}{
		{"names keep their case and values lose surrounding blanks", "a-B: 1\r\nC:\t two \r\n\r\n", []OriginHeader{{"a-B", "1"}, {"C", "two"}}},
		{"bare LF line ends are accepted", "A: 1\nB: 2\n\n", []OriginHeader{{"A", "1"}, {"B", "2"}}},
		{"a folded line continues the previous value", "A: 1\r\n  more\r\nB: 2\r\n\r\n", []OriginHeader{{"A", "1 more"}, {"B", "2"}}},
		{"an empty value is kept", "A:\r\n\r\n", []OriginHeader{{"A", ""}}},
		{"an empty block has no fields", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := originParseHeaders(nil, []byte(tt.raw)); !equalOriginHeaders(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
