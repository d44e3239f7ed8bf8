package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  string // the whole message
	}{
		{"a prefix without a leading slash", []Rule{{}, {}, {PathPrefix: "api"}}, `rule 2: path_prefix: "api" must start with "/"`},
		{"a path without a leading slash", []Rule{{Path: "api"}}, `rule 0: path: "api" must start with "/"`},
		{"both path and prefix", []Rule{{Path: "/a", PathPrefix: "/a"}}, "rule 0: path and path_prefix are mutually exclusive"},
		{"a path with a query", []Rule{{Path: "/a?b=1"}}, `rule 0: path: "/a?b=1" must not contain '?' (a query or fragment is not part of the path)`},
		{"a path with a fragment", []Rule{{PathPrefix: "/a#x"}}, `rule 0: path_prefix: "/a#x" must not contain '#' (a query or fragment is not part of the path)`},
		{"a path with a space", []Rule{{PathPrefix: "/a b"}}, `rule 0: path_prefix: "/a b" must not contain ' ': write %20, as a request path carries it`},
		{"a path with a backslash", []Rule{{PathPrefix: `/a\b`}}, `rule 0: path_prefix: "/a\\b" must not contain '\\': write %5C, as a request path carries it`},
		{"a path with a raw non-ASCII byte", []Rule{{PathPrefix: "/café"}}, `rule 0: path_prefix: "/café" must be ASCII: write %C3, as a request path carries it`},
		{"a path with a lower-case escape", []Rule{{PathPrefix: "/caf%c3%a9"}}, `rule 0: path_prefix: "/caf%c3%a9": write %c3 as %C3: request paths carry escapes in upper case`},
		{"a path with an escaped letter", []Rule{{PathPrefix: "/%41pi"}}, `rule 0: path_prefix: "/%41pi": write %41 as 'A': request paths carry it decoded`},
		{"a path with an escaped dot", []Rule{{PathPrefix: "/a/%2E%2E/b"}}, `rule 0: path_prefix: "/a/%2E%2E/b": write %2E as '.': request paths carry it decoded`},
		{"a path with a broken escape", []Rule{{PathPrefix: "/a%2"}}, `rule 0: path_prefix: "/a%2": "%" must start an escape of two hex digits`},
		{"a path with an escaped NUL", []Rule{{PathPrefix: "/a%00"}}, `rule 0: path_prefix: "/a%00": must not contain %00`},
		{"a path with an empty segment", []Rule{{PathPrefix: "/a//b"}}, `rule 0: path_prefix: "/a//b" must not contain "//" (request paths are normalised)`},
		{"a path with a dot-dot segment", []Rule{{PathPrefix: "/a/../b"}}, `rule 0: path_prefix: "/a/../b" must not contain "." or ".." segments (request paths are normalised)`},
		{"a path ending in a dot segment", []Rule{{Path: "/a/."}}, `rule 0: path: "/a/." must not contain "." or ".." segments (request paths are normalised)`},
		{"a host with a port", []Rule{{Host: "example.com:8080"}}, `rule 0: host: "example.com:8080" must not contain a port`},
		{"an IPv6 host with a port", []Rule{{Host: "[::1]:8080"}}, `rule 0: host: "[::1]:8080" must not contain a port`},
		{"an IPv6 host without brackets", []Rule{{Host: "2001:db8::1"}}, `rule 0: host: "2001:db8::1" looks like an IPv6 address: write it in brackets ("[::1]")`},
		{"an IPv6 literal that does not parse", []Rule{{Host: "[1:2:3]"}}, `rule 0: host: "[1:2:3]" is not a valid IPv6 literal`},
		{"an IPv4 address in brackets", []Rule{{Host: "[127.0.0.1]"}}, `rule 0: host: "[127.0.0.1]" is not a valid IPv6 literal`},
		{"an IPv6 literal with a zone", []Rule{{Host: "[fe80::1%eth0]"}}, `rule 0: host: "[fe80::1%eth0]" is not a valid IPv6 literal`},
		{"an unterminated IPv6 literal", []Rule{{Host: "[::1"}}, `rule 0: host: "[::1" is an unterminated IPv6 literal`},
		{"a host with userinfo", []Rule{{Host: "user@example.com"}}, `rule 0: host: "user@example.com" must not contain userinfo`},
		{"a host with a trailing dot", []Rule{{Host: "example.com."}}, `rule 0: host: "example.com." has an empty label (leave out a trailing dot)`},
		{"a host with an empty label", []Rule{{Host: "a..com"}}, `rule 0: host: "a..com" has an empty label (leave out a trailing dot)`},
		{"a host with a label over 63 bytes", []Rule{{Host: strings.Repeat("a", 64) + ".com"}}, `rule 0: host: "` + strings.Repeat("a", 64) + `.com" has a label longer than 63 bytes`},
		{"a host with a star inside", []Rule{{Host: "a.*.com"}}, `rule 0: host: "a.*.com" has a "*" that is not a whole leading label ("*.example.com")`},
		{"a bare star host", []Rule{{Host: "*"}}, `rule 0: host: "*" has a "*" that is not a whole leading label ("*.example.com")`},
		{"a star without a dot", []Rule{{Host: "*example.com"}}, `rule 0: host: "*example.com" has a "*" that is not a whole leading label ("*.example.com")`},
		{"a wildcard without a suffix", []Rule{{Host: "*."}}, `rule 0: host: "*." has no name after the wildcard`},
		{"a wildcard over two stars", []Rule{{Host: "*.*.example.com"}}, `rule 0: host: "*.*.example.com" has a "*" that is not a whole leading label ("*.example.com")`},
		{"a wildcard over an IP literal", []Rule{{Host: "*.[::1]"}}, `rule 0: host: "*.[::1]": an IP literal cannot take a wildcard`},
		{"a host with a slash", []Rule{{Host: "a/b"}}, `rule 0: host: "a/b" has an invalid byte '/'`},
		{"a host with a Kelvin sign", []Rule{{Host: "\u212a.example.com"}}, `rule 0: host: "\u212a.example.com" must be ASCII (use the punycode form, xn--...)`},
		{"an empty method", []Rule{{Methods: []string{""}}}, `rule 0: methods[0]: "" is not a valid method token`},
		{"a method with a space", []Rule{{Methods: []string{"GET", "GET POST"}}}, `rule 0: methods[1]: "GET POST" is not a valid method token`},
		{"a lower-case method", []Rule{{Methods: []string{"get"}}}, `rule 0: methods[0]: "get": methods are case-sensitive and standard ones are upper case; write "GET"`},
		{"CONNECT", []Rule{{Methods: []string{"CONNECT"}}}, `rule 0: methods[0]: CONNECT is not supported: the gateway is not a forward proxy`},
		{"an invalid header name", []Rule{{Headers: [][2]string{{"X A", "1"}}}}, `rule 0: headers.X A: "X A" is not a valid header name`},
		{"an empty header value", []Rule{{Headers: [][2]string{{"X-A", ""}}}}, `rule 0: headers.X-A: value must not be empty`},
		{"a header value with surrounding space", []Rule{{Headers: [][2]string{{"X-A", " 1"}}}}, `rule 0: headers.X-A: value " 1" must not start or end with whitespace`},
		{"a header value with a newline", []Rule{{Headers: [][2]string{{"X-A", "1\r\nX-B: 2"}}}}, `rule 0: headers.X-A: value "1\r\nX-B: 2" holds control byte '\r'`},
		{"a header named twice in any case", []Rule{{Headers: [][2]string{{"X-A", "1"}, {"x-a", "1"}}}}, `rule 0: headers.x-a: "x-a" appears twice (names ignore case)`},
	}
	for _, tt := range tests {
		t.Run("Compile rejects "+tt.name, func(t *testing.T) {
			table, err := Compile(tt.rules)
			if err == nil {
				t.Fatalf("Compile succeeded, want %q", tt.want)
			}
			if table != nil {
				t.Errorf("Compile returned a table along with its error")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestCompileReportsEveryProblemAsAnError(t *testing.T) {
	_, err := Compile([]Rule{
		{PathPrefix: "a", Methods: []string{"get"}},
		{},
		{Host: "x:1", Headers: [][2]string{{"X-A", ""}}},
	})
	var got []Error
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *Error
		if !errors.As(e, &re) {
			t.Fatalf("problem %q is not a *route.Error", e)
		}
		got = append(got, Error{Rule: re.Rule, Key: re.Key})
	}
	want := []Error{{Rule: 0, Key: "path_prefix"}, {Rule: 0, Key: "methods[0]"}, {Rule: 2, Key: "host"}, {Rule: 2, Key: "headers.X-A"}}
	if !slices.Equal(got, want) {
		t.Errorf("problems at %v, want %v", got, want)
	}
}

func TestCompileWarnsAboutUnregisteredMethods(t *testing.T) {
	tests := []struct {
		name    string
		methods []string
		want    []string
	}{
		{"standard methods pass quietly", []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"}, nil},
		{"WebDAV methods pass quietly", []string{"PROPFIND", "MKCOL", "VERSION-CONTROL"}, nil},
		{"a typo is accepted with a warning", []string{"GET", "GETT"},
			[]string{`rule 0: methods[1]: "GETT" is not a registered HTTP method; the route matches only requests whose method is exactly "GETT"`}},
		{"an extension method is accepted with a warning", []string{"PURGE"},
			[]string{`rule 0: methods[0]: "PURGE" is not a registered HTTP method; the route matches only requests whose method is exactly "PURGE"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := compileWarning(t, []Rule{{Methods: tt.methods}}, tt.want)
			if m := tt.methods[len(tt.methods)-1]; table.Match([]byte("h"), []byte(m), []byte("/"), nil) != 0 {
				t.Errorf("a %s request does not match the rule that lists it", m)
			}
		})
	}
}

func TestCompileWarnsAboutARuleAnEarlierOneAlwaysBeats(t *testing.T) {
	never := func(rule, first int) string {
		return fmt.Sprintf("rule %d: the same match as routes[%d], which comes first and so always wins: this route is never used", rule, first)
	}
	tests := []struct {
		name  string
		rules []Rule
		want  []string
	}{
		{"a copy", []Rule{{PathPrefix: "/api"}, {PathPrefix: "/api"}}, []string{never(1, 0)}},
		{"no path is /", []Rule{{}, {PathPrefix: "/"}}, []string{never(1, 0)}},
		{"host case, methods and headers in another order",
			[]Rule{{Host: "API.example.com", Path: "/x", Methods: []string{"GET", "POST"}, Headers: [][2]string{{"x-a", "1"}, {"X-B", "2"}}},
				{PathPrefix: "/other"},
				{Host: "api.example.com", Path: "/x", Methods: []string{"POST", "GET"}, Headers: [][2]string{{"X-B", "2"}, {"X-A", "1"}}}},
			[]string{never(2, 0)}},
		{"a prefix and the same exact path differ", []Rule{{PathPrefix: "/x"}, {Path: "/x"}}, nil},
		{"a trailing slash differs", []Rule{{PathPrefix: "/x"}, {PathPrefix: "/x/"}}, nil},
		{"one more method differs", []Rule{{Methods: []string{"GET"}}, {Methods: []string{"GET", "HEAD"}}}, nil},
		{"a header value differs", []Rule{{Headers: [][2]string{{"X-A", "1"}}}, {Headers: [][2]string{{"X-A", "2"}}}}, nil},
		{"a wildcard and its exact host differ", []Rule{{Host: "*.example.com"}, {Host: "a.example.com"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compileWarning(t, tt.rules, tt.want)
		})
	}
}

// compileWarning compiles rules, which must compile, and checks that the
// table's warnings are want.
func compileWarning(t *testing.T, rules []Rule, want []string) *Table {
	t.Helper()
	table, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	var got []string
	for _, w := range table.Warnings() {
		got = append(got, w.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	return table
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
	}{
		{"an empty rule", Rule{}},
		{"an IPv4 host", Rule{Host: "10.0.0.1"}},
		{"an IPv6 literal host", Rule{Host: "[2001:DB8::1]"}},
		{"an IPv4-mapped IPv6 literal host", Rule{Host: "[::ffff:10.0.0.1]"}},
		{"a host with an underscore", Rule{Host: "_dmarc.example.com"}},
		{"a one-label wildcard", Rule{Host: "*.localhost"}},
		{"a root exact path", Rule{Path: "/"}},
		{"escapes of bytes that stay encoded", Rule{PathPrefix: "/caf%C3%A9/a%20b"}},
		{"sub-delims, colons and at signs in a path", Rule{Path: "/a;b=c/d:e@f/!$&'()*+,"}},
		{"a segment starting with dots", Rule{PathPrefix: "/.well-known/..x"}},
		{"an extension method", Rule{Methods: []string{"PROPFIND", "M-SEARCH"}}},
		{"a repeated method", Rule{Methods: []string{"GET", "GET"}}},
		{"a header value with inner spaces", Rule{Headers: [][2]string{{"X-A", "a b\tc"}}}},
	}
	for _, tt := range tests {
		t.Run("Compile accepts "+tt.name, func(t *testing.T) {
			if _, err := Compile([]Rule{tt.rule}); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

func TestIPv6HostMatchesLowerCased(t *testing.T) {
	table := mustCompile(t, []Rule{{Host: "[2001:DB8::1]"}})
	if got := table.Match([]byte("[2001:db8::1]"), []byte("GET"), []byte("/"), nil); got != 0 {
		t.Errorf("Match = %d, want 0", got)
	}
}

func TestRepeatedMethodIsListedOnce(t *testing.T) {
	table := mustCompile(t, []Rule{{Methods: []string{"GET", "GET"}}})
	_, allow := table.MatchOrAllowed([]byte("h"), []byte("PUT"), []byte("/"), nil, nil)
	if string(allow) != "GET" {
		t.Errorf("allow = %q, want %q", allow, "GET")
	}
}
