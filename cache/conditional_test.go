package cache

import (
	"reflect"
	"testing"
	"time"
)

func TestNotModified(t *testing.T) {
	lm := t0.Add(-time.Hour)
	date := t0.Add(-time.Minute)
	b := func(s string) []byte {
		if s == "-" {
			return nil
		}
		return []byte(s)
	}
	tests := []struct {
		name     string
		inm, ims string
		etag     string
		lastMod  time.Time
		date     time.Time
		want     bool
	}{
		{"RFC 9110 §13.1.2 same strong ETag matches", `"v1"`, "-", `"v1"`, lm, date, true},
		{"RFC 9110 §13.1.2 weak comparison ignores W/", `W/"v1"`, "-", `"v1"`, lm, date, true},
		{"RFC 9110 §13.1.2 weak stored tag matches a strong one", `"v1"`, "-", `W/"v1"`, lm, date, true},
		{"RFC 9110 §13.1.2 a member of a list matches", `"a", W/"b" ,"v1"`, "-", `"v1"`, lm, date, true},
		{"RFC 9110 §13.1.2 a different tag does not match", `"v2"`, "-", `"v1"`, lm, date, false},
		{"RFC 9110 §13.1.2 star matches any stored response", `*`, "-", ``, lm, date, true},
		{"RFC 9110 §13.1.2 no stored ETag matches nothing but star", `"v1"`, "-", ``, lm, date, false},
		{"RFC 9110 §13.1.2 a comma inside a tag is part of it", `"a,b"`, "-", `"a,b"`, lm, date, true},
		{"RFC 9110 §13.1.2 a malformed tag does not match", `v1`, "-", `"v1"`, lm, date, false},
		{"RFC 9110 §13.2.2 If-None-Match wins over If-Modified-Since", `"v2"`, httpDate(t0), `"v1"`, lm, date, false},
		{"RFC 9110 §13.1.3 not modified since a later date", "-", httpDate(lm.Add(time.Second)), `"v1"`, lm, date, true},
		{"RFC 9110 §13.1.3 not modified since the same date", "-", httpDate(lm), `"v1"`, lm, date, true},
		{"RFC 9110 §13.1.3 modified since an earlier date", "-", httpDate(lm.Add(-time.Second)), `"v1"`, lm, date, false},
		{"RFC 9110 §13.1.3 an invalid date is ignored", "-", "yesterday", `"v1"`, lm, date, false},
		{"RFC 9111 §4.3.2 without Last-Modified, Date counts", "-", httpDate(date), ``, time.Time{}, date, true},
		{"RFC 9111 §4.3.2 without Date, the time received counts", "-", httpDate(t0.Add(-time.Second)), ``, time.Time{}, time.Time{}, false},
		{"no conditional fields, no 304", "-", "-", `"v1"`, lm, date, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NotModified(b(tt.inm), b(tt.ims), []byte(tt.etag), tt.lastMod, tt.date, t0, t0)
			if got != tt.want {
				t.Errorf("NotModified = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSelects304(t *testing.T) {
	lm := t0.Add(-time.Hour)
	tests := []struct {
		name   string
		stored string
		m      Meta
		want   bool
	}{
		{"RFC 9111 §4.3.4 a matching strong ETag selects", `"v1"`, meta(304, "ETag", `"v1"`), true},
		{"RFC 9111 §4.3.4 a different strong ETag does not", `"v1"`, meta(304, "ETag", `"v2"`), false},
		{"RFC 9111 §4.3.4 a strong ETag does not select a weak stored one", `W/"v1"`, meta(304, "ETag", `"v1"`), false},
		{"RFC 9111 §4.3.4 a weak ETag selects by weak comparison", `"v1"`, meta(304, "ETag", `W/"v1"`), true},
		{"RFC 9111 §4.3.4 an equal Last-Modified selects", `"v1"`, meta(304, "Last-Modified", httpDate(lm)), true},
		{"RFC 9111 §4.3.4 another Last-Modified does not", `"v1"`, meta(304, "Last-Modified", httpDate(lm.Add(time.Second))), false},
		{"RFC 9111 §4.3.4 no validator answers the request sent", `"v1"`, meta(304), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Selects304([]byte(tt.stored), lm, &tt.m); got != tt.want {
				t.Errorf("Selects304 = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUpdateHeader(t *testing.T) {
	tests := []struct {
		name           string
		stored, update []Field
		want           []Field
	}{
		{"RFC 9111 §4.3.4 fields of the 304 replace the stored ones",
			fields("Content-Type", "text/plain", "Cache-Control", "max-age=1", "ETag", `"v1"`),
			fields("cache-control", "max-age=60", "Date", "x"),
			fields("Content-Type", "text/plain", "ETag", `"v1"`, "cache-control", "max-age=60", "Date", "x")},
		{"RFC 9111 §3.2 every stored line of a replaced field goes",
			fields("Link", "a", "Link", "b", "X", "1"),
			fields("Link", "c"),
			fields("X", "1", "Link", "c")},
		{"RFC 9111 §3.2 Content-Length is never updated",
			fields("Content-Type", "a"),
			fields("Content-Length", "0"),
			fields("Content-Type", "a")},
		{"RFC 9110 §7.6.1 hop-by-hop fields are never taken",
			fields("X", "1"),
			fields("Connection", "close", "Transfer-Encoding", "chunked", "Keep-Alive", "timeout=5"),
			fields("X", "1")},
		{"Set-Cookie and Age of a 304 are not stored",
			fields("X", "1"),
			fields("Set-Cookie", "a=b", "Age", "3"),
			fields("X", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UpdateHeader(nil, tt.stored, tt.update)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UpdateHeader\n got %s\nwant %s", showFields(got), showFields(tt.want))
			}
		})
	}
}

func showFields(fs []Field) string {
	s := ""
	for _, f := range fs {
		s += string(f.Name) + ": " + string(f.Value) + "; "
	}
	return s
}

func TestNotModifiedField(t *testing.T) {
	for name, want := range map[string]bool{"ETag": true, "cache-control": true, "Vary": true,
		"Content-Type": false, "Content-Encoding": false, "Last-Modified": true} {
		if got := NotModifiedField([]byte(name)); got != want {
			t.Errorf("RFC 9110 §15.4.5: NotModifiedField(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestRFC9111Section3_2UpdateKeepsContentFields: a 304 carries no content,
// so the fields describing the stored content's bytes stay as stored, while
// the representation's metadata is updated.
func TestRFC9111Section3_2UpdateKeepsContentFields(t *testing.T) {
	tests := []struct {
		name  string
		field string
		keep  bool
	}{
		{"Content-Encoding describes the stored bytes", "Content-Encoding", true},
		{"Content-Range describes the stored bytes", "Content-Range", true},
		{"Content-MD5 is a digest of the stored bytes", "Content-MD5", true},
		{"Content-Digest is a digest of the stored bytes", "content-digest", true},
		{"Content-Length is the stored body's", "Content-Length", true},
		{"Content-Type is representation metadata", "Content-Type", false},
		{"Content-Location is representation metadata", "Content-Location", false},
		{"Content-Security-Policy is not about the content's bytes", "Content-Security-Policy", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := fields("X", "1", tt.field, "old")
			got := UpdateHeader(nil, stored, fields(tt.field, "new", "X", "2"))
			want := fields(tt.field, "old", "X", "2")
			if !tt.keep {
				want = fields(tt.field, "new", "X", "2")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("UpdateHeader\n got %s\nwant %s", showFields(got), showFields(want))
			}
		})
	}
}
