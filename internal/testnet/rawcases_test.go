package testnet

import "testing"

func TestMalformedRequestsReturnsAFreshSlice(t *testing.T) {
	a := MalformedRequests()
	a[0].Status = 999
	if b := MalformedRequests(); b[0].Status == 999 {
		t.Fatal("MalformedRequests shares its slice between calls")
	}
}

func TestMalformedRequestsHaveDistinctNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range MalformedRequests() {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
	}
}
