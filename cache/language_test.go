package cache

import "testing"

func TestNormaliseLanguages(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"RFC 4647 §2 ranges are case-insensitive", "eN,De", "en,de"},
		{"equal weights keep their order: servers take the first", "en,de", "en,de"},
		{"RFC 9110 §12.4.2 weights order the members", "fr;q=0.5,de;q=1.0,en;q=0.8", "de;q=1.0,en;q=0.8,fr;q=0.5"},
		{"no weight is a weight of 1", "fr;q=0.9,en", "en,fr;q=0.9"},
		{"whitespace around the weight is dropped", "fr ; Q=0.5,de", "de,fr;q=0.5"},
		{"a weight moves a member past those of equal weight, which keep their order", "b;q=0.5,c,a", "c,a,b;q=0.5"},
		{"a wildcard is a member like the others", "*;q=0.1,en", "en,*;q=0.1"},
		{"a weight that is not a qvalue keeps the order", "fr;q=2,de", "fr;q=2,de"},
		{"another parameter keeps the order", "fr;x=1,de", "fr;x=1,de"},
		{"a quoted string is left as it is", `Fr,"x"`, `Fr,"x"`},
		{"one member", "EN-us", "en-us"},
		{"more members than are sorted keep their order", "q,p,o,n,m,l,k,j,i,h,g,f,e,d,c,b,a", "q,p,o,n,m,l,k,j,i,h,g,f,e,d,c,b,a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := append([]byte("prefix"), tt.in...)
			if got := string(normaliseLanguages(dst, len("prefix"))); got != "prefix"+tt.want {
				t.Errorf("normaliseLanguages(%q) = %q, want %q", tt.in, got[len("prefix"):], tt.want)
			}
		})
	}
}

// Two requests that ask for the same languages in another case or with
// the weights written in another order share a Vary key; another order of
// equal weights or different weights do not.
func TestAcceptLanguageVaryKeysAreNormalised(t *testing.T) {
	key := func(lang string) string {
		return string(appendVaryKey(nil, []byte("p"), []byte("accept-language"), header("Accept-Language", lang)))
	}
	if key("en, de") != key("EN,De") {
		t.Error("en, de and EN,De have different keys")
	}
	if key("de;q=0.5, en") != key("en, de;q=0.5") {
		t.Error("de;q=0.5, en and en, de;q=0.5 have different keys")
	}
	if key("en, de") == key("de, en") {
		t.Error("en, de and de, en share a key: a server may answer each in its first language")
	}
	if key("en;q=0.5, de") == key("en, de;q=0.5") {
		t.Error("different weights share a key")
	}
	buf := make([]byte, 0, 256)
	f := header("Accept-Language", "fr;q=0.5, de, en;q=0.8")
	other := header("X-Other", "fr;q=0.5, de, en;q=0.8")
	base := testing.AllocsPerRun(100, func() {
		buf = appendVaryKey(buf[:0], []byte("p"), []byte("x-other"), other)
	})
	if n := testing.AllocsPerRun(100, func() {
		buf = appendVaryKey(buf[:0], []byte("p"), []byte("accept-language"), f)
	}); n != base {
		t.Errorf("a Vary key with Accept-Language allocates %v times, with another field %v", n, base)
	}
}
