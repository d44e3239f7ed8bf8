package balancer

import "testing"

func TestParseKeySource(t *testing.T) {
	tests := []struct {
		in      string
		want    KeySource
		wantErr string
	}{
		{in: "client", want: KeySource{Kind: KeyClient}},
		{in: "header:X-Tenant", want: KeySource{Kind: KeyHeader, Name: "X-Tenant"}},
		{in: "cookie:session", want: KeySource{Kind: KeyCookie, Name: "session"}},
		{in: "query:user id", want: KeySource{Kind: KeyQuery, Name: "user id"}},
		{in: "path:2", want: KeySource{Kind: KeyPath, Segment: 2}},
		{in: "", wantErr: `key "": want client, header:<name>, cookie:<name>, query:<name> or path:<n>`},
		{in: "header:", wantErr: `key "header:": want client, header:<name>, cookie:<name>, query:<name> or path:<n>`},
		{in: "header:X Tenant", wantErr: `key "header:X Tenant": invalid header name (character ' ')`},
		{in: "cookie:a=b", wantErr: `key "cookie:a=b": invalid cookie name (character '=')`},
		{in: "path:0", wantErr: `key "path:0": the path segment must be a number from 1 up`},
		{in: "path:x", wantErr: `key "path:x": the path segment must be a number from 1 up`},
		{in: "ip:1", wantErr: `key "ip:1": unknown kind "ip" (want client, header, cookie, query or path)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKeySource(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseKeySource(%q) = %+v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseKeySource(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("String() = %q, want %q back", s, tt.in)
			}
		})
	}
}
