package cache

import "testing"

func TestInvalidated(t *testing.T) {
	tests := []struct {
		name                string
		method              string
		status              int
		location, contentLo string
		want                [3]string // "" for absent
	}{
		{"RFC 9111 §4.4 a successful POST invalidates its target", "POST", 201, "", "", [3]string{"/orders?x=1"}},
		{"RFC 9111 §4.4 a redirect counts as success", "PUT", 303, "", "", [3]string{"/orders?x=1"}},
		{"RFC 9111 §4.4 an error invalidates nothing", "DELETE", 500, "/orders/9", "", [3]string{}},
		{"RFC 9111 §4.4 a 4xx invalidates nothing", "PATCH", 409, "", "", [3]string{}},
		{"RFC 9111 §4.4 safe methods invalidate nothing", "GET", 200, "/a", "", [3]string{}},
		{"RFC 9111 §4.4 unknown methods are unsafe", "PURGEALL", 200, "", "", [3]string{"/orders?x=1"}},
		{"RFC 9111 §4.4 Location with an absolute path", "POST", 201, "/orders/9", "", [3]string{"/orders?x=1", "/orders/9"}},
		{"RFC 9111 §4.4 Location on the same host", "POST", 201, "https://API.example.com/orders/9?v=2#top", "",
			[3]string{"/orders?x=1", "/orders/9?v=2"}},
		{"RFC 9111 §4.4 the host part is compared, not the port", "POST", 201, "http://api.example.com:8080/orders/9", "",
			[3]string{"/orders?x=1", "/orders/9"}},
		{"RFC 9111 §4.4 another host with the same port is not", "POST", 201, "http://evil.example:8080/orders/9", "",
			[3]string{"/orders?x=1"}},
		{"RFC 9111 §4.4 Location on another host is not invalidated", "POST", 201, "https://evil.example/orders/9", "",
			[3]string{"/orders?x=1"}},
		{"RFC 9111 §4.4 userinfo is refused", "POST", 201, "http://x@api.example.com/orders/9", "", [3]string{"/orders?x=1"}},
		{"RFC 9111 §4.4 Content-Location, network-path form", "PUT", 200, "", "//api.example.com", [3]string{"/orders?x=1", "", "/"}},
		{"RFC 3986 §5.2 a relative path resolves against the target", "POST", 201, "9/items", "", [3]string{"/orders?x=1", "/9/items"}},
		{"RFC 3986 §5.2 a query-only reference keeps the path", "POST", 201, "?page=2", "", [3]string{"/orders?x=1", "/orders?page=2"}},
		{"other schemes are ignored", "POST", 201, "mailto:a@api.example.com", "", [3]string{"/orders?x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Invalidated([]byte(tt.method), tt.status, []byte("api.example.com"), []byte("/orders?x=1"),
				[]byte(tt.location), []byte(tt.contentLo))
			for i := range got {
				if string(got[i]) != tt.want[i] || (got[i] == nil) != (tt.want[i] == "") {
					t.Errorf("target %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestInvalidatedRelativeToANestedPath(t *testing.T) {
	got := Invalidated([]byte("POST"), 201, []byte("h"), []byte("/a/b/c?q"), []byte("d"), nil)
	if string(got[1]) != "/a/b/d" {
		t.Errorf("Location d from /a/b/c = %q, want /a/b/d", got[1])
	}
}
