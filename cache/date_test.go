package cache

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Time
		ok   bool
	}{
		{"RFC 9110 §5.6.7 IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", want, true},
		{"RFC 9110 §5.6.7 obsolete RFC 850 date", "Sunday, 06-Nov-94 08:49:37 GMT", want, true},
		{"RFC 9110 §5.6.7 obsolete asctime date", "Sun Nov  6 08:49:37 1994", want, true},
		{"asctime with a two-digit day", "Sun Nov 16 08:49:37 1994", want.AddDate(0, 0, 10), true},
		{"surrounding whitespace is ignored", "  Sun, 06 Nov 1994 08:49:37 GMT\t", want, true},
		{"RFC 9111 §4.2 names ignore case", "SUN, 06 NOV 1994 08:49:37 gMT", want, true},
		{"RFC 9111 §4.2 names ignore case in RFC 850 dates", "sunday, 06-nov-94 08:49:37 gmt", want, true},
		{"RFC 9110 §5.6.7 two-digit year more than 50 years ahead is last century",
			"Thursday, 01-Jan-99 00:00:00 GMT", time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"RFC 9110 §5.6.7 two-digit year within 50 years is this century",
			"Friday, 01-Jan-30 00:00:00 GMT", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"RFC 9111 §5.3 the value 0 is invalid", "0", time.Time{}, false},
		{"empty is invalid", "", time.Time{}, false},
		{"a zone other than GMT is invalid", "Sun, 06 Nov 1994 08:49:37 UTC", time.Time{}, false},
		{"31 February is invalid, not 3 March", "Mon, 31 Feb 2025 08:49:37 GMT", time.Time{}, false},
		{"hour 24 is invalid", "Sun, 06 Nov 1994 24:49:37 GMT", time.Time{}, false},
		{"unknown month is invalid", "Sun, 06 Foo 1994 08:49:37 GMT", time.Time{}, false},
		{"unknown day name is invalid", "Xyz, 06 Nov 1994 08:49:37 GMT", time.Time{}, false},
		{"RFC 850 with a short day name is invalid", "Sun, 06-Nov-94 08:49:37 GMT", time.Time{}, false},
		{"digits with a sign are invalid", "Sun, +6 Nov 1994 08:49:37 GMT", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseHTTPDate([]byte(tt.in), now)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("ParseHTTPDate(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
