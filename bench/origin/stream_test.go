package origin

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDownloadSendsItsSizeOfThePattern(t *testing.T) {
	o := startServer(t, Options{})
	client := &http.Client{Timeout: testTimeout}
	for _, tc := range []struct {
		query  string
		size   int64
		length int64 // -1: chunked
	}{
		{"size=3MiB", 3 << 20, 3 << 20},
		{"size=100000&chunked=1", 100000, -1},
		{"size=200KiB&piece=10KiB&interval=1ms", 200 << 10, 200 << 10},
		{"", 1 << 20, 1 << 20},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := client.Get("http://" + o.Addr() + "/download?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.ContentLength != tc.length || int64(len(body)) != tc.size {
				t.Fatalf("status %d, Content-Length %d, %d bytes; want 200, %d, %d",
					resp.StatusCode, resp.ContentLength, len(body), tc.length, tc.size)
			}
			for i, c := range body {
				if c != PatternAt(int64(i)) {
					t.Fatalf("byte %d is %q, want %q", i, c, PatternAt(int64(i)))
				}
			}
		})
	}
	for _, bad := range []string{"size=lots", "size=65GiB", "piece=0", "interval=soon"} {
		resp, err := client.Get("http://" + o.Addr() + "/download?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestEventsSendsEachEventAsItIsProduced(t *testing.T) {
	o := startServer(t, Options{})
	resp, err := (&http.Client{Timeout: testTimeout}).Get("http://" + o.Addr() + "/events?n=3&interval=10ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if n := strings.Count(string(body), "event: tick\ndata: {\"seq\":"); n != 3 {
		t.Fatalf("%d events, want 3:\n%s", n, body)
	}
}
