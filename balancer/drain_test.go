package balancer

import "testing"

func TestDrainingBackendIsNotPickedAndKeepsItsBitOverAReload(t *testing.T) {
	o := testOptions("127.0.0.1:1", "127.0.0.1:2")
	p, err := NewPool("orders", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := p.Backends()[0]
	if !a.SetDraining(true) || a.SetDraining(true) {
		t.Fatal("SetDraining(true) should report a change once")
	}
	if a.Healthy() || !a.Draining() || !a.Stats().Draining {
		t.Fatal("a draining backend still counts as healthy")
	}
	// The other sources of health leave the operator's bit alone.
	a.SetHealthy(false)
	a.SetHealthy(true)
	a.SetEjected(true)
	a.SetEjected(false)
	if a.Healthy() {
		t.Fatal("health checks brought a draining backend back")
	}
	for range 10 {
		if got := p.Pick(nil); got == a {
			t.Fatal("Pick chose a draining backend")
		}
	}

	next, err := NewPool("orders", o, p)
	if err != nil {
		t.Fatal(err)
	}
	if next.Backends()[0] != a || !a.Draining() {
		t.Fatal("a rebuilt pool lost the draining bit")
	}
	if !a.SetDraining(false) || !a.Healthy() {
		t.Fatal("SetDraining(false) did not bring the backend back")
	}
}
