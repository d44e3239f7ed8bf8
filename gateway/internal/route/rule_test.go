package route

import (
	"strings"
	"testing"
)

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"a prefix without a leading slash", []Rule{{}, {}, {PathPrefix: "api"}}, `rule 2: path_prefix "api": must start with "/"`},
		{"a path without a leading slash", []Rule{{Path: "api"}}, `rule 0: path "api": must start with "/"`},
		{"both path and prefix", []Rule{{Path: "/a", PathPrefix: "/a"}}, "rule 0: path and path_prefix are mutually exclusive"},
		{"a path with a query", []Rule{{Path: "/a?b=1"}}, `must not contain '?'`},
		{"a path with a fragment", []Rule{{PathPrefix: "/a#x"}}, `must not contain '#'`},
		{"a path with a space", []Rule{{PathPrefix: "/a b"}}, `invalid byte ' '`},
		{"a path with an empty segment", []Rule{{PathPrefix: "/a//b"}}, `must not contain "//"`},
		{"a path with a dot-dot segment", []Rule{{PathPrefix: "/a/../b"}}, `"." or ".." segments`},
		{"a path ending in a dot segment", []Rule{{Path: "/a/."}}, `"." or ".." segments`},
		{"a host with a port", []Rule{{Host: "example.com:8080"}}, `rule 0: host "example.com:8080": must not contain a port`},
		{"a host with a trailing dot", []Rule{{Host: "example.com."}}, "trailing dot"},
		{"a host with an empty label", []Rule{{Host: "a..com"}}, "empty label"},
		{"a host with a star inside", []Rule{{Host: "a.*.com"}}, `"*" is only allowed`},
		{"a bare star host", []Rule{{Host: "*"}}, `"*" is only allowed`},
		{"a star without a dot", []Rule{{Host: "*example.com"}}, `"*" is only allowed`},
		{"a wildcard without a suffix", []Rule{{Host: "*."}}, "empty host name"},
		{"a wildcard over two stars", []Rule{{Host: "*.*.example.com"}}, `"*" is only allowed`},
		{"a wildcard over an IP literal", []Rule{{Host: "*.[::1]"}}, "IP literal"},
		{"a host with a slash", []Rule{{Host: "a/b"}}, "invalid byte '/'"},
		{"a host with a Kelvin sign", []Rule{{Host: "\u212a.example.com"}}, "must be ASCII"},
		{"an unterminated IPv6 literal", []Rule{{Host: "[::1"}}, "unterminated"},
		{"an empty method", []Rule{{Methods: []string{""}}}, `rule 0: methods: "" is not a valid method token`},
		{"a method with a space", []Rule{{Methods: []string{"GET POST"}}}, "not a valid method token"},
		{"an invalid header name", []Rule{{Headers: [][2]string{{"X A", "1"}}}}, `rule 0: headers: "X A" is not a valid header name`},
		{"an empty header value", []Rule{{Headers: [][2]string{{"X-A", ""}}}}, "value must not be empty"},
		{"a header value with surrounding space", []Rule{{Headers: [][2]string{{"X-A", " 1"}}}}, "whitespace"},
		{"a header value with a newline", []Rule{{Headers: [][2]string{{"X-A", "1\r\nX-B: 2"}}}}, "control byte"},
		{"a header named twice in any case", []Rule{{Headers: [][2]string{{"X-A", "1"}, {"x-a", "1"}}}}, `"x-a" appears twice`},
	}
	for _, tt := range tests {
		t.Run("Compile rejects "+tt.name, func(t *testing.T) {
			table, err := Compile(tt.rules)
			if err == nil {
				t.Fatalf("Compile succeeded, want an error containing %q", tt.want)
			}
			if table != nil {
				t.Errorf("Compile returned a table along with its error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileReportsEveryBadRule(t *testing.T) {
	_, err := Compile([]Rule{{PathPrefix: "a"}, {}, {Host: "x:1"}})
	if err == nil {
		t.Fatal("Compile succeeded, want errors for rules 0 and 2")
	}
	for _, want := range []string{"rule 0:", "rule 2:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "rule 1:") {
		t.Errorf("error %q mentions the valid rule 1", err)
	}
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
	}{
		{"an empty rule", Rule{}},
		{"an IPv4 host", Rule{Host: "10.0.0.1"}},
		{"an IPv6 literal host", Rule{Host: "[2001:DB8::1]"}},
		{"a host with an underscore", Rule{Host: "_dmarc.example.com"}},
		{"a one-label wildcard", Rule{Host: "*.localhost"}},
		{"a root exact path", Rule{Path: "/"}},
		{"a percent sign and unicode in a path", Rule{PathPrefix: "/caf%C3%A9/é"}},
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
