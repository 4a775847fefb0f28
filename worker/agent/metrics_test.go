package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/internal/metricsdoc"
	"github.com/ark-sched/ark/scheduler/api"
)

// gpuValue is family name's value on GPU index.
func gpuValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, index int) float64 {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "gpu" && lp.GetValue() == strconv.Itoa(index) {
				if m.Counter != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s has no series for GPU %d", name, index)
	return 0
}

// checkAgentScrape checks a scrape of an agent against docs/metrics.md:
// the agent's families, and the task families when tasks is set (none
// may appear otherwise).
func checkAgentScrape(t *testing.T, body string, tasks bool) map[string]*dto.MetricFamily {
	t.Helper()
	docs, err := metricsdoc.Load(metricsdoc.Path())
	if err != nil {
		t.Fatal(err)
	}
	fams, err := metricsdoc.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatalf("agent scrape does not parse: %v", err)
	}
	own, taskFams := map[string]*dto.MetricFamily{}, map[string]*dto.MetricFamily{}
	for name, f := range fams {
		if strings.HasPrefix(name, "ark_task_") {
			taskFams[name] = f
		} else {
			own[name] = f
		}
	}
	errs := metricsdoc.Check(docs, "agent", own)
	if tasks {
		errs = append(errs, metricsdoc.Check(docs, "task", taskFams)...)
	} else if len(taskFams) > 0 {
		errs = append(errs, fmt.Sprintf("task families with no task reporting: %v", slices.Collect(maps.Keys(taskFams))))
	}
	for _, e := range errs {
		t.Error(e)
	}
	return fams
}

// TestAgentMetrics runs a cluster with one agent of two fake H200s, runs a
// task on one GPU that reports its figures to the agent (this test binary
// as a task: reportMetricsTask), and scrapes the agent's /metrics on its
// HTTP listener: the scrape parses to the families docs/metrics.md lists
// for the agent and for tasks, the task's series carry its job, namespace,
// rank and node, and the busy GPU reads busy while the idle one reads
// idle, never silent.
func TestAgentMetrics(t *testing.T) {
	c := cluster(t, 1)
	bg := context.Background()
	// The program itself, not a shell: the sandbox lets a task read its
	// program's directory, and gives it a /tmp of its own.
	spec, _ := json.Marshal(map[string]any{
		"name": "busy", "kind": "batch", "replicas": 1,
		"resources": map[string]any{"gpus": 1, "cpu": "100m", "memory": "64Mi"},
		"task": map[string]any{"driver": "exec", "exec": map[string]any{
			"command": []string{taskBinary(t)}, "env": map[string]string{"TEST_TASK": "report-metrics"},
		}},
	})
	r, err := c.SubmitJob(bg, spec)
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitFor(t, 10*time.Second, "task running", func() bool {
		job, _, err = c.Job(bg, r.ID, 0, 0)
		return err == nil && job.Status == api.JobRunning && len(job.Allocations) == 1 && job.Allocations[0].Status == api.AllocRunning
	})
	nodes, err := c.Nodes(bg)
	if err != nil || len(nodes) != 1 || nodes[0].AgentAddr == "" {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	var body []byte
	waitFor(t, 10*time.Second, "the task's figures on /metrics", func() bool {
		resp, err := http.Get("http://" + nodes[0].AgentAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics on the agent: %d %s", resp.StatusCode, body)
		}
		return strings.Contains(string(body), "ark_task_train_step{")
	})
	fams := checkAgentScrape(t, string(body), true)
	checkTaskSeries(t, fams, map[string]string{"job": r.ID, "namespace": "default", "rank": "0", "node": "node-0"}, testTaskMetrics)
	busy := job.Allocations[0].GPUs[0]
	idle := 1 - busy
	if u := gpuValue(t, fams, "ark_gpu_utilization_ratio", busy); u < 0.9 {
		t.Errorf("busy GPU %d utilisation %.2f, want > 0.9", busy, u)
	}
	if u := gpuValue(t, fams, "ark_gpu_utilization_ratio", idle); u > 0.05 {
		t.Errorf("idle GPU %d utilisation %.2f, want < 0.05", idle, u)
	}
	for _, g := range []int{busy, idle} {
		used, free := gpuValue(t, fams, "ark_gpu_memory_used_bytes", g), gpuValue(t, fams, "ark_gpu_memory_free_bytes", g)
		if used <= 0 || free <= 0 || used+free != 141<<30 {
			t.Errorf("GPU %d memory used %v + free %v, want 141Gi, both > 0", g, used, free)
		}
		if w := gpuValue(t, fams, "ark_gpu_power_watts", g); w < 100 || w > 720 {
			t.Errorf("GPU %d power %v W, want 100..720 (an H200)", g, w)
		}
		if c := gpuValue(t, fams, "ark_gpu_temperature_celsius", g); c < 25 || c > 85 {
			t.Errorf("GPU %d temperature %v, want 25..85", g, c)
		}
	}
	if gpuValue(t, fams, "ark_gpu_power_watts", busy) <= gpuValue(t, fams, "ark_gpu_power_watts", idle) {
		t.Error("the busy GPU draws no more power than the idle one")
	}
	if v := fams["ark_agent_tasks"]; v == nil {
		t.Error("no ark_agent_tasks")
	} else {
		for _, m := range v.GetMetric() {
			if m.GetLabel()[0].GetValue() == "running" && m.GetGauge().GetValue() != 1 {
				t.Errorf("running tasks = %v, want 1", m.GetGauge().GetValue())
			}
		}
	}
	if testing.Verbose() {
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "ark_") {
				t.Log(line)
			}
		}
	}
}

// taskBinary is a copy of this test binary that a task running as an
// unprivileged user may execute (go test's build dir is its own).
func taskBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ark-task-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "task")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAgentMetricsMockNVML reads an agent's GPUs through the real NVML
// sampler over go-nvml's mock DGX H200: eight GPUs with plausible figures.
func TestAgentMetricsMockNVML(t *testing.T) {
	a, err := New(Config{Name: "mock", Servers: []string{"127.0.0.1:1"}, DataDir: t.TempDir(), MockNVML: "dgxh200", Address: "127.0.0.1", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.ln.Close()
	defer a.met.close()
	rec := httptest.NewRecorder()
	a.metricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	fams := checkAgentScrape(t, rec.Body.String(), false)
	if n := len(fams["ark_gpu_utilization_ratio"].GetMetric()); n != 8 {
		t.Fatalf("%d GPUs, want 8", n)
	}
	for g := range 8 {
		u := gpuValue(t, fams, "ark_gpu_utilization_ratio", g)
		used, free := gpuValue(t, fams, "ark_gpu_memory_used_bytes", g), gpuValue(t, fams, "ark_gpu_memory_free_bytes", g)
		w := gpuValue(t, fams, "ark_gpu_power_watts", g)
		if u < 0.1 || u > 1 || used <= 0 || free <= 0 || w < 100 || w > 720 {
			t.Errorf("GPU %d: utilisation %v, memory %v used %v free, %v W", g, u, used, free, w)
		}
	}
}
