// Package metrics exposes the counters of the hooks, the token cache, the
// audit batcher and the throttle as Prometheus metrics. The library
// packages keep plain atomic counters, so that they do not depend on
// Prometheus; a Collector reads them at each scrape.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/store"
)

const namespace = "gs_auth_token"

// Sources are the counters to expose. Nil fields are left out.
type Sources struct {
	Hooks    *hook.Stats
	Cache    *store.Cache
	Audit    *audit.Batcher
	Throttle *hook.Throttle
}

// NewLagHistogram returns the histogram of invalidation lag. Pass
// [ObserveLag] of it to [store.WithLagObserver], and it to [Registry].
func NewLagHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "invalidation_lag_seconds",
		Help:    "Time from a token change, by the database clock, to the end of the cache reload that its notification caused.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
}

// Registry returns a registry with the Go and process collectors, a
// collector of src, and the lag histogram.
func Registry(src Sources, lag prometheus.Histogram) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&collector{src: src}, lag)
	return reg
}

// Handler returns the HTTP handler of the registry.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

var (
	checksDesc = prometheus.NewDesc(namespace+"_checks_total",
		"Submissions to the hooks, by outcome: ok, missing, unknown, malformed, expired, revoked, wrong_site, throttled, unavailable, invalid or rejected.",
		[]string{"outcome"}, nil)
	cacheHitsDesc   = prometheus.NewDesc(namespace+"_cache_hits_total", "Token checks answered from the in-memory cache.", nil, nil)
	cacheMissesDesc = prometheus.NewDesc(namespace+"_cache_misses_total", "Checks of new-format tokens whose id was not cached, looked up in the database.", nil, nil)
	reloadsDesc     = prometheus.NewDesc(namespace+"_cache_reloads_total", "Reloads of the token cache, by result.", []string{"result"}, nil)
	notifyDesc      = prometheus.NewDesc(namespace+"_cache_notifications_total", "Change notifications received from PostgreSQL.", nil, nil)
	listeningDesc   = prometheus.NewDesc(namespace+"_cache_listening", "1 while the PostgreSQL change listener is connected.", nil, nil)
	queueDesc       = prometheus.NewDesc(namespace+"_audit_queue_depth", "Audit events waiting to be written.", nil, nil)
	writtenDesc     = prometheus.NewDesc(namespace+"_audit_written_total", "Audit events written.", nil, nil)
	droppedDesc     = prometheus.NewDesc(namespace+"_audit_dropped_total", "Audit events dropped, each logged at error level instead.", nil, nil)
	failedDesc      = prometheus.NewDesc(namespace+"_audit_failed_batches_total", "Audit batch writes that failed and were retried.", nil, nil)
	clientsDesc     = prometheus.NewDesc(namespace+"_throttle_clients", "Client addresses tracked by the failure throttle.", nil, nil)
	lockoutsDesc    = prometheus.NewDesc(namespace+"_throttle_lockouts_total", "Client addresses locked out after too many failures.", nil, nil)
	refusedDesc     = prometheus.NewDesc(namespace+"_throttle_refused_total", "Requests refused with 429 from locked-out addresses.", nil, nil)
)

type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	if s := c.src.Hooks; s != nil {
		for outcome, n := range s.Counts() {
			counter(checksDesc, n, outcome)
		}
	}
	if c.src.Cache != nil {
		s := c.src.Cache.Stats()
		counter(cacheHitsDesc, s.Hits)
		counter(cacheMissesDesc, s.Misses)
		counter(reloadsDesc, s.Reloads, "ok")
		counter(reloadsDesc, s.ReloadErrors, "error")
		counter(notifyDesc, s.Notifications)
		gauge(listeningDesc, boolFloat(s.Listening))
	}
	if c.src.Audit != nil {
		s := c.src.Audit.Stats()
		gauge(queueDesc, float64(s.Queued))
		counter(writtenDesc, s.Written)
		counter(droppedDesc, s.Dropped)
		counter(failedDesc, s.FailedBatches)
	}
	if c.src.Throttle != nil {
		s := c.src.Throttle.Stats()
		gauge(clientsDesc, float64(s.Clients))
		counter(lockoutsDesc, s.Lockouts)
		counter(refusedDesc, s.Refused)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ObserveLag returns a function for [store.WithLagObserver] that records
// into h.
func ObserveLag(h prometheus.Histogram) func(time.Duration) {
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}
