package server

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// A server's Prometheus metrics (docs/metrics.md lists them all). What the
// state holds (jobs, queues, GPUs, Raft indexes) is read from a snapshot at
// scrape time by collectors (metrics_state.go, metrics_raft.go); only
// events (requests, commits, passes, placements, preemptions) are counted
// where they happen, through the instruments below. Each server has its
// own registry, never the global one: a test runs several in one process.
//
// Names follow Kueue's (kueue_pending_workloads, ...) with an ark_ prefix.
// No label takes a value a tenant chooses freely: routes are the router's
// patterns, never paths; queues past a bound are folded (queueLabels).

type serverMetrics struct {
	reg    *prometheus.Registry
	queues *queueLabels // set by registerMetrics

	apiRequests *prometheus.CounterVec   // route, code
	apiLatency  *prometheus.HistogramVec // route

	raftCommit    prometheus.Histogram
	fsmApply      prometheus.Histogram
	leaderChanges prometheus.Counter

	passDuration  *prometheus.HistogramVec // kind: full, incremental
	admitted      *prometheus.CounterVec   // queue
	admissionWait *prometheus.HistogramVec // queue
	preemptions   *prometheus.CounterVec   // reason
	plansRejected prometheus.Counter
}

// Bucket bounds, in seconds, sized for what each measures.
var (
	apiBuckets       = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	raftBuckets      = prometheus.ExponentialBuckets(0.0005, 2, 14)  // 0.5ms .. 4s
	fsmBuckets       = prometheus.ExponentialBuckets(0.00001, 4, 10) // 10µs .. 2.6s
	passBuckets      = prometheus.ExponentialBuckets(0.0001, 4, 10)  // 0.1ms .. 26s
	admissionBuckets = []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400}
)

// Preemption reasons (ark_preemptions_total's reason label).
const (
	preemptPriority = "priority" // a higher-priority job evicts lower-priority work
	preemptReclaim  = "reclaim"  // a queue takes back its quota from borrowed allocations
)

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{
		reg: prometheus.NewRegistry(),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ark_api_requests_total",
			Help: "HTTP API requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ark_api_request_duration_seconds", Buckets: apiBuckets,
			Help: "Time to answer an HTTP API request, by route pattern (blocking queries include their wait).",
		}, []string{"route"}),
		raftCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ark_raft_commit_duration_seconds", Buckets: raftBuckets,
			Help: "Time from proposing a command on the leader until it is committed and applied there.",
		}),
		fsmApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ark_raft_fsm_apply_duration_seconds", Buckets: fsmBuckets,
			Help: "Time the state machine takes to apply one committed log entry on this server.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ark_raft_leader_changes_total",
			Help: "Times this server saw the cluster's leader change (to another server or to none).",
		}),
		passDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ark_scheduling_pass_duration_seconds", Buckets: passBuckets,
			Help: "Time the leader takes to plan one scheduling pass (full: every pending job; incremental: new ones).",
		}, []string{"kind"}),
		admitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ark_admitted_workloads_total",
			Help: "Jobs placed (all their ranks committed), by queue.",
		}, []string{"queue"}),
		admissionWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ark_admission_wait_time_seconds", Buckets: admissionBuckets,
			Help: "Time a job waited from submission (or its restart) until it was placed, by queue.",
		}, []string{"queue"}),
		preemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ark_preemptions_total",
			Help: "Running jobs evicted to make room for a pending one, by reason (priority, reclaim).",
		}, []string{"reason"}),
		plansRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ark_plan_rejections_total",
			Help: "Placements of a plan dropped by the leader's check or the commit because the state moved.",
		}),
	}
	for _, r := range []string{preemptPriority, preemptReclaim} {
		m.preemptions.WithLabelValues(r) // present at 0 before the first
	}
	for _, k := range []string{"full", "incremental"} {
		m.passDuration.WithLabelValues(k)
	}
	m.reg.MustRegister(m.apiRequests, m.apiLatency, m.raftCommit, m.fsmApply, m.leaderChanges,
		m.passDuration, m.admitted, m.admissionWait, m.preemptions, m.plansRejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// timedFSM measures each entry the state machine applies.
type timedFSM struct {
	raft.FSM
	hist prometheus.Histogram
}

func (f timedFSM) Apply(l *raft.Log) any {
	start := time.Now()
	defer func() { f.hist.Observe(time.Since(start).Seconds()) }()
	return f.FSM.Apply(l)
}
