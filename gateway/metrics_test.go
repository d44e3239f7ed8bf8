package gateway

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, m *metrics, route, class string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.requests.WithLabelValues(route, class).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

func seriesOf(t *testing.T, m *metrics, name string) int {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

func TestARouteBroughtBackByAReloadKeepsItsCounters(t *testing.T) {
	m := newMetrics(func() *Table { return nil })
	now := time.Unix(1000, 0)
	rm := m.forRoute("orders")
	rm.count(200)
	m.routesChanged(map[string]bool{"orders": true}, map[string]bool{}, now)

	// Still exported while removed, and continued when it comes back.
	rm = m.forRoute("orders")
	rm.count(200)
	m.routesChanged(map[string]bool{}, map[string]bool{"orders": true}, now.Add(time.Minute))
	if got := counterValue(t, m, "orders", "2xx"); got != 2 {
		t.Fatalf("orders 2xx = %v after a remove and re-add, want 2 (counters continued)", got)
	}

	// Gone for longer than the retention: no longer exported.
	m.routesChanged(map[string]bool{"orders": true}, map[string]bool{}, now.Add(2*time.Minute))
	m.routesChanged(map[string]bool{}, map[string]bool{}, now.Add(2*time.Minute+routeRetention))
	if n := seriesOf(t, m, "sluice_requests_total"); n != 6 { // the unmatched route's six classes
		t.Fatalf("%d series left, want only the unmatched route's 6", n)
	}
}
