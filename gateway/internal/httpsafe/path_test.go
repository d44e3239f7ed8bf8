package httpsafe

import "testing"

func TestAppendPath(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		o      Options
		want   string
		status int
	}{
		{"the root stays the root", "/", Options{MergeSlashes: true}, "/", 0},
		{"an empty path from an absolute URI becomes the root", "", Options{MergeSlashes: true}, "/", 0},
		{"a plain path is unchanged", "/admin/users", Options{MergeSlashes: true}, "/admin/users", 0},
		{"a trailing slash is kept", "/admin/", Options{MergeSlashes: true}, "/admin/", 0},
		{"an encoded unreserved letter is decoded", "/%61dmin", Options{MergeSlashes: true}, "/admin", 0},
		{"encoded unreserved marks are decoded", "/%2D%2e%5F%7e", Options{MergeSlashes: true}, "/-._~", 0},
		{"other escapes get upper-case hex", "/a%3bb%c3%a9", Options{MergeSlashes: true}, "/a%3Bb%C3%A9", 0},
		{"a dot segment is removed", "/./admin", Options{MergeSlashes: true}, "/admin", 0},
		{"a parent segment is resolved", "/x/../admin", Options{MergeSlashes: true}, "/admin", 0},
		{"encoded dots are resolved after decoding", "/x/%2e%2E/admin", Options{MergeSlashes: true}, "/admin", 0},
		{"a half-encoded parent is resolved", "/x/.%2e/admin", Options{MergeSlashes: true}, "/admin", 0},
		{"a parent above the root is refused", "/../../admin", Options{MergeSlashes: true}, "", 400},
		{"a parent above the root after a resolved one is refused", "/x/../../admin", Options{MergeSlashes: true}, "", 400},
		{"an encoded parent above the root is refused", "/%2e%2E/admin", Options{MergeSlashes: true}, "", 400},
		{"a trailing dot segment leaves a slash", "/admin/.", Options{MergeSlashes: true}, "/admin/", 0},
		{"a trailing parent segment leaves a slash", "/admin/x/..", Options{MergeSlashes: true}, "/admin/", 0},
		{"three dots are an ordinary segment", "/.../a", Options{MergeSlashes: true}, "/.../a", 0},
		{"a dotted name is an ordinary segment", "/a/.b/c.", Options{MergeSlashes: true}, "/a/.b/c.", 0},
		{"a leading double slash is merged", "//admin", Options{MergeSlashes: true}, "/admin", 0},
		{"inner double slashes are merged", "/a//b///c", Options{MergeSlashes: true}, "/a/b/c", 0},
		{"a trailing double slash is merged", "/admin//", Options{MergeSlashes: true}, "/admin/", 0},
		{"inner double slashes are kept when asked", "/a//b", Options{}, "/a//b", 0},
		{"a leading double slash is merged even when keeping", "//a//b", Options{}, "/a//b", 0},
		{"a parent removes an empty segment when keeping", "/a//..", Options{}, "/a/", 0},
		{"case is kept", "/ADMIN", Options{MergeSlashes: true}, "/ADMIN", 0},
		{"sub-delims, colon and at are kept", "/a!$&'()*+,=:@b", Options{MergeSlashes: true}, "/a!$&'()*+,=:@b", 0},
		{"an encoded percent stays encoded", "/%25", Options{MergeSlashes: true}, "/%25", 0},
		{"an encoded slash passes when allowed", "/a%2fb", Options{AllowEncodedSlash: true}, "/a%2Fb", 0},
		{"an encoded backslash passes when allowed", "/a%5cb", Options{AllowEncodedSlash: true}, "/a%5Cb", 0},
		{"a matrix parameter passes when allowed", "/admin;x=1", Options{AllowMatrixParams: true}, "/admin;x=1", 0},

		{"an encoded slash is refused", "/admin%2Fx", Options{MergeSlashes: true}, "", 400},
		{"an encoded backslash is refused", "/admin%5c", Options{MergeSlashes: true}, "", 400},
		{"a raw backslash is refused", "/admin\\", Options{MergeSlashes: true}, "", 400},
		{"an encoded NUL is refused", "/a%00", Options{MergeSlashes: true}, "", 400},
		{"an invalid escape is refused", "/a%zz", Options{MergeSlashes: true}, "", 400},
		{"a truncated escape is refused", "/a%4", Options{MergeSlashes: true}, "", 400},
		{"a lone percent is refused", "/a%", Options{MergeSlashes: true}, "", 400},
		{"a raw non-ASCII byte is refused", "/\xc3\xa9", Options{MergeSlashes: true}, "", 400},
		{"a matrix parameter is refused", "/admin;x", Options{MergeSlashes: true}, "", 400},
		{"a space is refused", "/a b", Options{MergeSlashes: true}, "", 400},
		{"a fragment mark is refused", "/a#b", Options{MergeSlashes: true}, "", 400},
		{"a control byte is refused", "/a\x01", Options{MergeSlashes: true}, "", 400},
		{"a relative path is refused", "admin", Options{MergeSlashes: true}, "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, st, why := AppendPath(dst, []byte(tc.raw), &tc.o)
			if st != tc.status {
				t.Fatalf("AppendPath(%q) status %d (%s), want %d", tc.raw, st, why, tc.status)
			}
			if st != 0 {
				if why == "" || string(got) != "prefix" {
					t.Fatalf("refusal gave reason %q and dst %q, want a reason and dst untouched", why, got)
				}
				return
			}
			if string(got) != "prefix"+tc.want {
				t.Fatalf("AppendPath(%q) = %q, want %q", tc.raw, got[len("prefix"):], tc.want)
			}
			again, st, _ := AppendPath(nil, got[len("prefix"):], &tc.o)
			if st != 0 || string(again) != tc.want {
				t.Fatalf("AppendPath is not idempotent: %q gives %q (status %d)", tc.want, again, st)
			}
		})
	}
}

// Every spelling of /admin that a backend might resolve to /admin must
// either normalise to exactly /admin (so a rule on /admin applies) or be
// refused. /ADMIN is a different path by design (see doc.go).
func TestAppendPathLeavesNoWayAroundAnAdminRule(t *testing.T) {
	spellings := []string{
		"/admin", "/%61dmin", "/%61%64%6D%69%6E", "/./admin", "/x/../admin", "//admin",
		"/admin/.", "/admin/x/..", "/%2e/admin", "/x/%2E%2E/admin", "///admin",
		"/admin%2F", "/admin%2f", "/admin\\", "/admin%5C", "/admin;x", "/admin;", "/admin%00",
		"/adm%69n", "/.//./admin", "/..//admin",
	}
	for _, s := range spellings {
		t.Run(s+" normalises to /admin or is refused", func(t *testing.T) {
			got, st, _ := AppendPath(nil, []byte(s), &Options{MergeSlashes: true})
			if st == 0 && string(got) != "/admin" && string(got) != "/admin/" {
				t.Fatalf("%q normalised to %q, which a rule on /admin would not cover", s, got)
			}
		})
	}
}

func TestSplitRequestURI(t *testing.T) {
	tests := []struct {
		name, target, path, query string
		hasQuery                  bool
	}{
		{"origin-form without query", "/a/b", "/a/b", "", false},
		{"origin-form with query", "/a?x=1&y", "/a", "x=1&y", true},
		{"origin-form with empty query", "/a?", "/a", "", true},
		{"absolute-form with path and query", "http://h:80/p/q?z", "/p/q", "z", true},
		{"absolute-form without path", "http://h", "", "", false},
		{"absolute-form with query but no path", "https://h?z", "", "z", true},
		{"a scheme separator inside a path is not absolute-form", "/a://b", "/a://b", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, q := SplitRequestURI([]byte(tc.target))
			if string(p) != tc.path || string(q) != tc.query || (q != nil) != tc.hasQuery {
				t.Fatalf("SplitRequestURI(%q) = %q, %q (query present %v), want %q, %q (%v)",
					tc.target, p, q, q != nil, tc.path, tc.query, tc.hasQuery)
			}
		})
	}
}
