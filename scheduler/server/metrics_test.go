package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ark-sched/ark/internal/metricsdoc"
	"github.com/ark-sched/ark/scheduler/api"
)

// scrape GETs url with token ("" for none) and returns the status and body.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// sample is the value of the family's series with exactly these labels
// (a histogram's sample count), and whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if labels[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestServerMetrics runs a server with tokens and a metrics listener,
// places one job and holds another back on its queue's quota, then scrapes
// both endpoints: /metrics on the API takes any token and refuses none,
// the metrics listener needs none and serves nothing else, and the scrape
// parses (expfmt) to exactly the families, types and labels docs/metrics.md
// lists for the server, with values that match the cluster.
func TestServerMetrics(t *testing.T) {
	docs, err := metricsdoc.Load(metricsdoc.Path())
	if err != nil {
		t.Fatal(err)
	}
	queues := loadQueuesYAML(t, "- {name: small, quotaGPUs: 2}\n")
	s := tokenServer(t, Config{Queues: queues, MetricsAddr: "127.0.0.1:0"})
	mgmt := as(t, s, mgmtTok)
	bg := context.Background()
	if _, err := mgmt.RegisterNode(bg, fakeNode("n", 4)); err != nil {
		t.Fatal(err)
	}
	submit := func(name string) string {
		t.Helper()
		r, err := mgmt.SubmitJob(bg, queueSpec(name, "small", 2))
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	job := func(id string) *api.Job {
		j, _, err := mgmt.Job(bg, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	first := submit("first")
	waitFor(t, 10*time.Second, "first job running", func() bool { return job(first).Status == api.JobRunning })
	second := submit("second")
	waitFor(t, 10*time.Second, "second job held on quota", func() bool { return len(job(second).Reasons) > 0 })

	apiURL := "http://" + s.HTTPAddr() + "/metrics"
	if code, _ := scrape(t, apiURL, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics on the API without a token: %d, want 401", code)
	}
	code, body := scrape(t, apiURL, nlpTok)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics with a tenant token: %d %s", code, body)
	}
	open := "http://" + s.MetricsAddr()
	if code, _ := scrape(t, open+"/v1/jobs", ""); code != http.StatusNotFound {
		t.Errorf("the metrics listener served /v1/jobs: %d, want 404", code)
	}
	code, openBody := scrape(t, open+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics on the metrics listener: %d %s", code, openBody)
	}
	for where, text := range map[string]string{"API": body, "metrics listener": openBody} {
		fams, err := metricsdoc.Decode(strings.NewReader(text))
		if err != nil {
			t.Fatalf("%s scrape does not parse: %v", where, err)
		}
		for _, e := range metricsdoc.Check(docs, "server", fams) {
			t.Errorf("%s scrape: %s", where, e)
		}
	}
	fams, _ := metricsdoc.Decode(strings.NewReader(openBody))
	type want struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}
	for _, w := range []want{
		{"ark_jobs", map[string]string{"queue": "small", "status": "running"}, 1, 1},
		{"ark_jobs", map[string]string{"queue": "small", "status": "pending"}, 1, 1},
		{"ark_pending_workloads", map[string]string{"queue": "small"}, 1, 1},
		{"ark_pending_workloads_by_reason", map[string]string{"queue": "small", "reason": "quota"}, 1, 1},
		{"ark_queue_resource_usage", map[string]string{"queue": "small", "resource": "gpu"}, 2, 2},
		{"ark_queue_nominal_quota", map[string]string{"queue": "small", "resource": "gpu"}, 2, 2},
		{"ark_queue_resource_borrowed", map[string]string{"queue": "small", "resource": "gpu"}, 0, 0},
		{"ark_gpus", map[string]string{"model": "NVIDIA H200", "state": "allocated"}, 2, 2},
		{"ark_gpus", map[string]string{"model": "NVIDIA H200", "state": "free"}, 2, 2},
		{"ark_nodes", map[string]string{"status": "ready"}, 1, 1},
		{"ark_admitted_workloads_total", map[string]string{"queue": "small"}, 1, 1},
		{"ark_admission_wait_time_seconds", map[string]string{"queue": "small"}, 1, 1},
		{"ark_raft_state", map[string]string{"state": "Leader"}, 1, 1},
		{"ark_raft_state", map[string]string{"state": "Follower"}, 0, 0},
		{"ark_raft_leader_changes_total", nil, 1, 10},
		{"ark_raft_commit_duration_seconds", nil, 3, 1e9},
		{"ark_raft_fsm_apply_duration_seconds", nil, 3, 1e9},
		{"ark_raft_last_index", nil, 3, 1e9},
		{"ark_scheduling_pass_duration_seconds", map[string]string{"kind": "full"}, 1, 1e9},
		{"ark_api_requests_total", map[string]string{"route": "POST /v1/jobs", "code": "201"}, 2, 2},
		{"ark_api_requests_total", map[string]string{"route": "GET /v1/jobs/{id}", "code": "200"}, 2, 1e9},
		{"ark_api_requests_total", map[string]string{"route": "GET /metrics", "code": "401"}, 1, 1},
		{"ark_api_request_duration_seconds", map[string]string{"route": "POST /v1/nodes/register"}, 1, 1},
	} {
		v, ok := sample(fams, w.name, w.labels)
		if !ok || v < w.min || v > w.max {
			t.Errorf("%s%v = %v (present %v), want %v..%v", w.name, w.labels, v, ok, w.min, w.max)
		}
	}
	// Routes are the router's patterns: no series names a job.
	for _, m := range fams["ark_api_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if strings.Contains(lp.GetValue(), first) {
				t.Errorf("a route label carries a job ID: %q", lp.GetValue())
			}
		}
	}
	if testing.Verbose() {
		for _, line := range strings.Split(openBody, "\n") {
			if strings.HasPrefix(line, "ark_") && !strings.Contains(line, "_bucket") {
				t.Log(line)
			}
		}
	}
}
