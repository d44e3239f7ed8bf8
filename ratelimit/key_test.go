package ratelimit

import (
	"reflect"
	"testing"
)

func TestParseKeyReadsEveryKindOfPartAndCombinations(t *testing.T) {
	tests := []struct {
		spec string
		want []KeyPart
		bad  bool
	}{
		{spec: "ip", want: []KeyPart{{Source: KeyIP}}},
		{spec: "header:X-API-Key", want: []KeyPart{{Source: KeyHeader, Name: "X-API-Key"}}},
		{spec: "query:token", want: []KeyPart{{Source: KeyQuery, Name: "token"}}},
		{spec: "cookie:session", want: []KeyPart{{Source: KeyCookie, Name: "session"}}},
		{spec: "ip + header:X-API-Key", want: []KeyPart{{Source: KeyIP}, {Source: KeyHeader, Name: "X-API-Key"}}},
		{spec: "", bad: true},
		{spec: "IP", bad: true},
		{spec: "header:", bad: true},
		{spec: "header:X Y", bad: true},
		{spec: "path:1", bad: true},
		{spec: "ip+ip", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseKey(tt.spec)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseKey(%q) = %v, want an error", tt.spec, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseKey(%q) = %v, %v; want %v", tt.spec, got, err, tt.want)
			}
		})
	}
}
