package route

import (
	"strings"
	"testing"
)

// testHeaders is a request's header list; Peek compares names
// case-insensitively like fasthttp and does not allocate.
type testHeaders []testHeader

type testHeader struct {
	name  string
	value []byte
}

// hdrs builds testHeaders from name, value pairs.
func hdrs(kv ...string) testHeaders {
	h := make(testHeaders, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, testHeader{name: kv[i], value: []byte(kv[i+1])})
	}
	return h
}

func (h testHeaders) Peek(name string) []byte {
	for _, f := range h {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return nil
}

// mustCompile compiles rules or fails the test.
func mustCompile(tb testing.TB, rules []Rule) *Table {
	tb.Helper()
	t, err := Compile(rules)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return t
}

// headersOrNil keeps a nil testHeaders a nil Headers interface, as a caller
// passing no headers would.
func headersOrNil(h testHeaders) Headers {
	if h == nil {
		return nil
	}
	return h
}
