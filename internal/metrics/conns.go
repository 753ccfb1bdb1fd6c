package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchConnections exports the data plane's open connections (open, read
// at scrape time) and the connections it closed at once for being over
// server.limits, and returns the function to call for each of those with
// the limit's name ("per_ip", "total").
func (m *Metrics) WatchConnections(open func() int) (refused func(reason string)) {
	m.watch("connections_open", "Connections open on the data plane's listeners.",
		prometheus.GaugeValue, nil, func(emit func(float64, ...string)) { emit(float64(open())) })
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "connections_refused_total",
		Help: "Data plane connections closed as soon as accepted, by the limit they were over (per_ip, total).",
	}, []string{"reason"})
	m.reg.MustRegister(c)
	for _, r := range []string{"per_ip", "total"} {
		c.WithLabelValues(r) // 0 from the start, so rate() sees the first one
	}
	return func(reason string) { c.WithLabelValues(reason).Inc() }
}
