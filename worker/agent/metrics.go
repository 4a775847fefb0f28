package agent

import (
	"net/http"
	"strconv"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/inventory"
)

// An agent's Prometheus metrics, served at GET /metrics on its HTTP
// listener (docs/metrics.md): its GPUs' live figures, read through the
// inventory's samplers at scrape time (NVML, the mock machine's, or the
// fake GPUs' that follow the tasks' load), its tasks, and the figures
// its tasks report (taskmetrics.go). The GPU and agent families name no
// job or tenant and take no token, like NVIDIA's DCGM exporter. The task
// families name job IDs and namespaces, and the agent's listener is one
// every task on the node can reach: with tokens on they are served only
// to the servers' credential (the logs key) and on Config.MetricsAddr, a
// listener for a Prometheus on a private network. Under ServeTLS only a
// client with a server certificate of the cluster reaches the listener
// at all.

// gpuSampler reads the node's GPUs.
type gpuSampler interface {
	Sample() ([]inventory.GPUSample, error)
}

type agentMetrics struct {
	public   *prometheus.Registry // the families that name no job
	tasks    *prometheus.Registry // the task families (job, namespace labels)
	restarts prometheus.Counter
	ended    *prometheus.CounterVec
	sampler  gpuSampler
	close    func()
}

// initMetrics builds the agent's registry. lib is the NVML the inventory
// was discovered with (nil: the system's); fake GPUs get a FakeSampler,
// a node without GPUs none.
func (a *Agent) initMetrics(lib nvml.Interface) {
	m := &agentMetrics{
		public: prometheus.NewRegistry(),
		tasks:  prometheus.NewRegistry(),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ark_agent_task_restarts_total",
			Help: "Tasks this agent started for a job's restart (attempt > 0: after a rank failed, was lost or preempted, or a drain moved it).",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ark_agent_tasks_ended_total",
			Help: "Tasks that ended on this node, by final status (succeeded, failed).",
		}, []string{"status"}),
		close: func() {},
	}
	for _, s := range []string{api.AllocSucceeded, api.AllocFailed} {
		m.ended.WithLabelValues(s)
	}
	switch {
	case a.inv == nil: // an Agent a test built by hand
	case a.inv.Fake:
		m.sampler = inventory.NewFakeSampler(a.inv.GPUs, a.gpuLoad)
	case len(a.inv.GPUs) > 0:
		if lib == nil {
			lib = nvml.New()
		}
		s, err := inventory.NewNVMLSampler(lib, a.inv.GPUs)
		if err != nil {
			a.log.Warn("GPU metrics unavailable", zap.Error(err))
		} else {
			m.sampler, m.close = s, s.Close
		}
	}
	m.public.MustRegister(m.restarts, m.ended, agentCollector{a},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.tasks.MustRegister(taskCollector{a})
	a.met = m
}

// metricsHandler serves the agent's families on its listener: all of
// them to a caller that may read logs (the servers, or anyone when the
// agent runs without tokens), the ones that name no job to others.
func (a *Agent) metricsHandler() http.Handler {
	all, public := a.metricsHandlers()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.logsAllowed(r) {
			all.ServeHTTP(w, r)
			return
		}
		public.ServeHTTP(w, r)
	})
}

// metricsHandlers serve every family, and the families that name no job.
func (a *Agent) metricsHandlers() (all, public http.Handler) {
	if a.met == nil { // an Agent a test built by hand, without New
		a.initMetrics(nil)
	}
	h := func(g prometheus.Gatherer) http.Handler {
		return promhttp.HandlerFor(g, promhttp.HandlerOpts{
			ErrorHandling:       promhttp.HTTPErrorOnError,
			ErrorLog:            zap.NewStdLog(a.log.Named("metrics")),
			MaxRequestsInFlight: 4,
			Timeout:             10 * time.Second,
		})
	}
	return h(prometheus.Gatherers{a.met.public, a.met.tasks}), h(a.met.public)
}

// taskStarted counts a start that is a job's restart.
func (m *agentMetrics) taskStarted(al *api.Allocation) {
	if al.Attempt > 0 {
		m.restarts.Inc()
	}
}

// taskEnded counts a task's final report.
func (m *agentMetrics) taskEnded(status string) { m.ended.WithLabelValues(status).Inc() }

// gpuLoad is the share of GPU index that running tasks hold (1 for a
// whole GPU), what the fake GPUs' figures follow.
func (a *Agent) gpuLoad(index int) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	load := 0.0
	for _, t := range a.tasks {
		if t.finished() {
			continue
		}
		for _, g := range t.alloc.GPUs {
			if g != index {
				continue
			}
			if t.alloc.GPUMilli > 0 {
				load += float64(t.alloc.GPUMilli) / spec.MilliPerGPU
			} else {
				load++
			}
		}
	}
	return min(load, 1)
}

var (
	gpuLabels   = []string{"gpu", "uuid", "model"}
	descGPUUtil = prometheus.NewDesc("ark_gpu_utilization_ratio",
		"Fraction of the last sample period a kernel ran on the GPU (DCGM_FI_DEV_GPU_UTIL / 100).", gpuLabels, nil)
	descGPUMemUsed = prometheus.NewDesc("ark_gpu_memory_used_bytes",
		"GPU framebuffer memory in use (DCGM_FI_DEV_FB_USED).", gpuLabels, nil)
	descGPUMemFree = prometheus.NewDesc("ark_gpu_memory_free_bytes",
		"GPU framebuffer memory free (DCGM_FI_DEV_FB_FREE).", gpuLabels, nil)
	descGPUPower = prometheus.NewDesc("ark_gpu_power_watts",
		"GPU board power draw (DCGM_FI_DEV_POWER_USAGE).", gpuLabels, nil)
	descGPUTemp = prometheus.NewDesc("ark_gpu_temperature_celsius",
		"GPU die temperature (DCGM_FI_DEV_GPU_TEMP).", gpuLabels, nil)
	descGPUXIDs = prometheus.NewDesc("ark_gpu_xid_errors_total",
		"Critical XID errors the driver raised on the GPU since the agent started.", gpuLabels, nil)
	descGPULastXID = prometheus.NewDesc("ark_gpu_last_xid",
		"Code of the last critical XID error on the GPU, 0 before any (DCGM_FI_DEV_XID_ERRORS).", gpuLabels, nil)
	descGPUsUp = prometheus.NewDesc("ark_gpu_telemetry_up",
		"1 when the last read of the node's GPU figures succeeded, 0 when it failed or the node has no GPU telemetry.", nil, nil)
	descTasks = prometheus.NewDesc("ark_agent_tasks",
		"Tasks this agent tracks, by status (running, finished: ended but still listed by the servers).", []string{"status"}, nil)
)

// agentCollector reads the GPUs and the task table at each scrape.
type agentCollector struct{ a *Agent }

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGPUUtil, descGPUMemUsed, descGPUMemFree, descGPUPower, descGPUTemp, descGPUXIDs, descGPULastXID, descGPUsUp, descTasks} {
		ch <- d
	}
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.mu.Lock()
	running, finished := 0, 0
	for _, t := range a.tasks {
		if t.finished() {
			finished++
		} else {
			running++
		}
	}
	a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(running), "running")
	ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(finished), "finished")

	up := 0.0
	if s := a.met.sampler; s != nil {
		samples, err := s.Sample()
		if err != nil {
			a.log.Warn("reading GPU figures failed", zap.Error(err))
		} else {
			up = 1
		}
		for _, g := range samples {
			l := []string{strconv.Itoa(g.Index), g.UUID, g.Model}
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
			}
			gauge(descGPUUtil, g.Utilization)
			gauge(descGPUMemUsed, float64(g.MemoryUsedBytes))
			gauge(descGPUMemFree, float64(g.MemoryFreeBytes))
			gauge(descGPUPower, g.PowerWatts)
			gauge(descGPUTemp, g.TemperatureCelsius)
			gauge(descGPULastXID, float64(g.LastXID))
			ch <- prometheus.MustNewConstMetric(descGPUXIDs, prometheus.CounterValue, float64(g.XIDErrors), l...)
		}
	}
	ch <- prometheus.MustNewConstMetric(descGPUsUp, prometheus.GaugeValue, up)
}
