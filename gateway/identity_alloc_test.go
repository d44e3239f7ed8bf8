//go:build !race

package gateway

import "testing"

func TestIdentifyingTheClientAllocatesNothing(t *testing.T) {
	rq := requestFrom("10.0.0.1", []string{"10.0.0.0/8"}, "198.51.100.9, 2001:db8::7, 10.0.0.2")
	if n := testing.AllocsPerRun(1000, rq.identify); n != 0 {
		t.Fatalf("identify allocates %v times per request, want 0", n)
	}
	if rq.client.String() != "2001:db8::7" {
		t.Fatalf("client = %s", rq.client)
	}
}
