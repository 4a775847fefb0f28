package agent

import (
	"maps"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ark-sched/ark/scheduler/api"
)

// Task metrics: the figures a task reports about itself (the builtin
// trainer's in its task reports, the builtin server's in its health
// answer), kept on the task and exported at scrape time with labels the
// agent takes from the allocation it started, never from the task: a
// task's token is a MAC of its own allocation ID, so what it sends can
// only ever land under its own job, namespace, rank and node. The schema
// is fixed (api.TaskMetrics), adapter names are checked and capped at
// api.MaxTaskAdapters series per task, rule actions are one of three, and
// a task's figures go with the task: a finished task exports nothing.

var (
	taskLabels       = []string{"job", "namespace", "rank", "node"}
	descTrainStep    = prometheus.NewDesc("ark_task_train_step", "The last training step a builtin trainer rank reported.", taskLabels, nil)
	descTrainLoss    = prometheus.NewDesc("ark_task_train_loss", "The training loss at the last reported step.", taskLabels, nil)
	descTrainTPS     = prometheus.NewDesc("ark_task_train_tokens_per_second", "Tokens per second of the rank over the last reporting interval.", taskLabels, nil)
	descServeRunning = prometheus.NewDesc("ark_task_serve_requests_running", "Requests an inference replica is decoding.", taskLabels, nil)
	descServeWaiting = prometheus.NewDesc("ark_task_serve_requests_waiting", "Requests waiting for a batch slot on an inference replica.", taskLabels, nil)
	descServeTokens  = prometheus.NewDesc("ark_task_serve_output_tokens_total", "Tokens an inference replica generated since it started.", taskLabels, nil)
	descServeTTFT    = prometheus.NewDesc("ark_task_serve_time_to_first_token_seconds", "Time from a request's arrival to its first token.", taskLabels, nil)
	descServeTPOT    = prometheus.NewDesc("ark_task_serve_time_per_output_token_seconds", "Mean time per output token after the first, per request.", taskLabels, nil)
	descServeReqs    = prometheus.NewDesc("ark_task_serve_requests_total", "Requests submitted to an inference replica, by adapter.", append(slices.Clone(taskLabels), "adapter"), nil)
	descServeRules   = prometheus.NewDesc("ark_task_serve_rule_actions_total", "Intervention rule actions on an inference replica, by action.", append(slices.Clone(taskLabels), "action"), nil)
	taskDescs        = []*prometheus.Desc{descTrainStep, descTrainLoss, descTrainTPS, descServeRunning, descServeWaiting, descServeTokens, descServeTTFT, descServeTPOT, descServeReqs, descServeRules}
)

// boundMetrics is m as the agent keeps it: adapter keys become label
// values ("" is api.BaseAdapter) and past api.MaxTaskAdapters (in name
// order) fold into api.OtherAdapters. m has passed Check.
func boundMetrics(m *api.TaskMetrics) *api.TaskMetrics {
	out := *m
	if m.Serve == nil || len(m.Serve.Requests) == 0 {
		return &out
	}
	s := *m.Serve
	s.Requests = map[string]uint64{}
	for i, k := range slices.Sorted(maps.Keys(m.Serve.Requests)) {
		label := k
		switch {
		case k == "":
			label = api.BaseAdapter
		case i >= api.MaxTaskAdapters:
			label = api.OtherAdapters
		}
		s.Requests[label] += m.Serve.Requests[k]
	}
	out.Serve = &s
	return &out
}

// putMetrics keeps allocation id's latest figures, if it runs here.
func (a *Agent) putMetrics(id string, m *api.TaskMetrics) bool {
	a.mu.Lock()
	t := a.tasks[id]
	a.mu.Unlock()
	if t == nil || t.finished() {
		return false
	}
	t.metrics.Store(boundMetrics(m))
	return true
}

// taskCollector exports the running tasks' figures.
type taskCollector struct{ a *Agent }

func (c taskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range taskDescs {
		ch <- d
	}
}

func (c taskCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.mu.Lock()
	tasks := make([]*task, 0, len(a.tasks))
	for _, t := range a.tasks {
		tasks = append(tasks, t)
	}
	a.mu.Unlock()
	for _, t := range tasks {
		m := t.metrics.Load()
		if m == nil || t.finished() {
			continue
		}
		al := t.alloc
		l := []string{al.JobID, al.Namespace, strconv.Itoa(al.Rank), a.cfg.Name}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		if tr := m.Train; tr != nil {
			gauge(descTrainStep, float64(tr.Step))
			gauge(descTrainLoss, tr.Loss)
			gauge(descTrainTPS, tr.TokensPerSecond)
		}
		s := m.Serve
		if s == nil {
			continue
		}
		gauge(descServeRunning, float64(s.Running))
		gauge(descServeWaiting, float64(s.Waiting))
		ch <- prometheus.MustNewConstMetric(descServeTokens, prometheus.CounterValue, float64(s.OutputTokens), l...)
		for d, h := range map[*prometheus.Desc]*api.Histogram{descServeTTFT: s.TTFT, descServeTPOT: s.TPOT} {
			if h != nil {
				ch <- constHistogram(d, h, l)
			}
		}
		for k, n := range s.Requests {
			ch <- prometheus.MustNewConstMetric(descServeReqs, prometheus.CounterValue, float64(n), append(slices.Clone(l), k)...)
		}
		for k, n := range s.RuleActions {
			ch <- prometheus.MustNewConstMetric(descServeRules, prometheus.CounterValue, float64(n), append(slices.Clone(l), k)...)
		}
	}
}

// constHistogram turns a task's histogram (checked) into Prometheus's
// cumulative buckets.
func constHistogram(d *prometheus.Desc, h *api.Histogram, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, b := range h.Bounds {
		n += h.Counts[i]
		buckets[b] = n
	}
	n += h.Counts[len(h.Bounds)]
	return prometheus.MustNewConstHistogram(d, n, h.Sum, buckets, labels...)
}
