package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
)

// stateCollector reads one snapshot of the replicated state at each scrape:
// jobs, pending reasons, queues against their quotas, nodes and GPUs. Every
// server holds the same state, so any of them answers the same (behind
// the leader by its replication lag).
type stateCollector struct {
	s      *Server
	queues *queueLabels
}

var (
	descJobs = prometheus.NewDesc("ark_jobs",
		"Jobs in the state, by queue and status (pending, running, succeeded, failed, cancelled).",
		[]string{"queue", "status"}, nil)
	descPending = prometheus.NewDesc("ark_pending_workloads",
		"Jobs waiting to be placed, by queue.", []string{"queue"}, nil)
	descPendingReason = prometheus.NewDesc("ark_pending_workloads_by_reason",
		"Pending jobs by queue and by each rule that keeps them waiting (a job held back by two rules counts under both; none: not yet planned).",
		[]string{"queue", "reason"}, nil)
	descQueueUsage = prometheus.NewDesc("ark_queue_resource_usage",
		"What a queue's running jobs hold, by resource (gpu: GPUs, a share counted as its fraction).",
		[]string{"queue", "resource"}, nil)
	descQueueQuota = prometheus.NewDesc("ark_queue_nominal_quota",
		"A queue's configured quota, by resource (0: no quota).", []string{"queue", "resource"}, nil)
	descQueueBorrowed = prometheus.NewDesc("ark_queue_resource_borrowed",
		"What a queue uses past its quota (idle capacity other queues may reclaim), by resource.",
		[]string{"queue", "resource"}, nil)
	descNodes = prometheus.NewDesc("ark_nodes",
		"Nodes by status (ready, draining, ineligible, down).", []string{"status"}, nil)
	descGPUs = prometheus.NewDesc("ark_gpus",
		"GPUs by model and state: allocated (held whole), shared (held in shares), free (schedulable, held by none), unavailable (held by none on a node that is down, draining or ineligible).",
		[]string{"model", "state"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descJobs, descPending, descPendingReason, descQueueUsage, descQueueQuota, descQueueBorrowed, descNodes, descGPUs} {
		ch <- d
	}
}

// pair is a two-label key.
type pair struct{ a, b string }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.store.Snapshot()
	c.collectJobs(ch, snap)
	c.collectQueues(ch, snap)
	c.collectNodes(ch, snap)
}

func (c *stateCollector) collectJobs(ch chan<- prometheus.Metric, snap *state.Snapshot) {
	jobs, pending, reasons := map[pair]int{}, map[string]int{}, map[pair]int{}
	// Every configured queue shows its pending count, 0 included.
	for name := range c.s.cfg.Queues {
		pending[c.queues.label(name)] += 0
	}
	for _, j := range snap.Jobs(nil) {
		q := c.queues.label(j.Queue)
		jobs[pair{q, j.Status}]++
		if j.Status != api.JobPending {
			continue
		}
		pending[q]++
		if len(j.Reasons) == 0 {
			reasons[pair{q, "none"}]++
			continue
		}
		seen := map[string]bool{}
		for _, r := range j.Reasons {
			if !seen[r.Rule] {
				seen[r.Rule] = true
				reasons[pair{q, r.Rule}]++
			}
		}
	}
	for k, n := range jobs {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n), k.a, k.b)
	}
	for q, n := range pending {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(n), q)
	}
	for k, n := range reasons {
		ch <- prometheus.MustNewConstMetric(descPendingReason, prometheus.GaugeValue, float64(n), k.a, k.b)
	}
}

func (c *stateCollector) collectQueues(ch chan<- prometheus.Metric, snap *state.Snapshot) {
	type sums struct{ used, quota, borrowed float64 }
	by := map[string]*sums{}
	for _, q := range c.s.queueStatuses(snap, func(string) bool { return true }) {
		l := c.queues.label(q.Name)
		if by[l] == nil {
			by[l] = &sums{}
		}
		by[l].used += q.UsedGPUs
		by[l].quota += float64(q.QuotaGPUs)
		by[l].borrowed += q.BorrowedGPUs
	}
	for q, v := range by {
		ch <- prometheus.MustNewConstMetric(descQueueUsage, prometheus.GaugeValue, v.used, q, "gpu")
		ch <- prometheus.MustNewConstMetric(descQueueQuota, prometheus.GaugeValue, v.quota, q, "gpu")
		ch <- prometheus.MustNewConstMetric(descQueueBorrowed, prometheus.GaugeValue, v.borrowed, q, "gpu")
	}
}

// Node states as ark_nodes counts them.
const (
	nodeDraining   = "draining"
	nodeIneligible = "ineligible"
)

func (c *stateCollector) collectNodes(ch chan<- prometheus.Metric, snap *state.Snapshot) {
	nodes := map[string]int{api.NodeReady: 0, api.NodeDown: 0, nodeDraining: 0, nodeIneligible: 0}
	gpus := map[pair]int{}
	for _, n := range snap.Nodes(nil) {
		status := n.Status
		switch {
		case status == api.NodeDown:
		case n.Drain != nil:
			status = nodeDraining
		case n.Ineligible:
			status = nodeIneligible
		}
		nodes[status]++
		whole, shared := map[int]bool{}, map[int]bool{}
		for _, a := range snap.AllocsByNode(nil, n.ID) {
			if a.Terminal() {
				continue
			}
			for _, g := range a.GPUs {
				if a.GPUMilli > 0 && a.GPUMilli < placement.MilliPerGPU {
					shared[g] = true
				} else {
					whole[g] = true
				}
			}
		}
		for _, g := range n.GPUs {
			st := "free"
			switch {
			case whole[g.Index]:
				st = "allocated"
			case shared[g.Index]:
				st = "shared"
			case status != api.NodeReady:
				st = "unavailable"
			}
			gpus[pair{g.Model, st}]++
		}
	}
	for st, n := range nodes {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n), st)
	}
	for k, n := range gpus {
		ch <- prometheus.MustNewConstMetric(descGPUs, prometheus.GaugeValue, float64(n), k.a, k.b)
	}
}

// raftCollector reads the server's Raft node at each scrape.
type raftCollector struct{ s *Server }

var (
	descRaftState = prometheus.NewDesc("ark_raft_state",
		"1 for this server's Raft state (Follower, Candidate, Leader, Shutdown), 0 for the others.",
		[]string{"state"}, nil)
	descRaftTerm      = prometheus.NewDesc("ark_raft_term", "This server's current Raft term.", nil, nil)
	descRaftLastIndex = prometheus.NewDesc("ark_raft_last_index", "Index of the last entry in this server's Raft log.", nil, nil)
	descRaftCommit    = prometheus.NewDesc("ark_raft_commit_index", "Highest log index this server knows committed.", nil, nil)
	descRaftApplied   = prometheus.NewDesc("ark_raft_applied_index", "Highest log index this server's state machine applied.", nil, nil)
)

var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

func (c raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descRaftLastIndex, descRaftCommit, descRaftApplied} {
		ch <- d
	}
}

func (c raftCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.raft
	cur := n.State()
	for _, st := range raftStates {
		v := 0.0
		if st == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, st)
	}
	ch <- prometheus.MustNewConstMetric(descRaftTerm, prometheus.GaugeValue, float64(n.Term()))
	ch <- prometheus.MustNewConstMetric(descRaftLastIndex, prometheus.GaugeValue, float64(n.LastIndex()))
	ch <- prometheus.MustNewConstMetric(descRaftCommit, prometheus.GaugeValue, float64(n.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(descRaftApplied, prometheus.GaugeValue, float64(n.AppliedIndex()))
}
