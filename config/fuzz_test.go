package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a YAML file. Load must never
// panic, and whatever it accepts must validate.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"example.yaml", "full.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		minimal,
		"",
		"- a\n- b\n",
		"pools: {orders: {backends: [{addr: 1}]}}\nroutes: [{name: a, pool: orders, match: {methods: GET}}]",
		"pools: {1: x, true: {}}\nroutes: [[], {}, 3]",
		"server: {read_timeout: 1e309, max_request_body: 1e19, trusted_proxies: [1, {a: b}]}",
		"routes: [{match: {headers: {? [a]: b}}}]",
		"a: &x [*x]",
		"listen: !!binary aGVsbG8=",
		"server: {max_header_bytes: 18446744073709551615}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "sluice.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that does not validate: %v", err)
		}
	})
}

// FuzzParseSize checks that every size ParseSize accepts prints as a string
// that parses back to the same value.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "4MiB", "16 KB", "1500", "9223372036854775807", "8gib"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err != nil {
			return
		}
		back, err := ParseSize(v.String())
		if err != nil || back != v {
			t.Fatalf("ParseSize(%q) = %d, but its String %q reads back as %d, %v", s, int64(v), v.String(), int64(back), err)
		}
	})
}
