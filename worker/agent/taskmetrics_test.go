package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/metricsdoc"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// labelsOf is m's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// checkTaskSeries checks that the task families in fams hold want's
// figures, every series with labels.
func checkTaskSeries(t *testing.T, fams map[string]*dto.MetricFamily, labels map[string]string, want api.TaskMetrics) {
	t.Helper()
	value := func(name string, extra ...string) float64 {
		t.Helper()
		for _, m := range fams[name].GetMetric() {
			l := labelsOf(m)
			for k, v := range labels {
				if l[k] != v {
					t.Errorf("%s: label %s=%q, want %q", name, k, l[k], v)
				}
			}
			if len(extra) == 2 && l[extra[0]] != extra[1] {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
		t.Errorf("%s%v: no series", name, extra)
		return -1
	}
	tr, s := want.Train, want.Serve
	for name, w := range map[string]float64{
		"ark_task_train_step": float64(tr.Step), "ark_task_train_loss": tr.Loss, "ark_task_train_tokens_per_second": tr.TokensPerSecond,
		"ark_task_serve_requests_running": float64(s.Running), "ark_task_serve_requests_waiting": float64(s.Waiting),
		"ark_task_serve_output_tokens_total":           float64(s.OutputTokens),
		"ark_task_serve_time_to_first_token_seconds":   5,
		"ark_task_serve_time_per_output_token_seconds": 4,
	} {
		if got := value(name); got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	for k, n := range s.Requests {
		if k == "" {
			k = api.BaseAdapter
		}
		if got := value("ark_task_serve_requests_total", "adapter", k); got != float64(n) {
			t.Errorf("requests of adapter %s = %v, want %d", k, got, n)
		}
	}
	for k, n := range s.RuleActions {
		if got := value("ark_task_serve_rule_actions_total", "action", k); got != float64(n) {
			t.Errorf("rule action %s = %v, want %d", k, got, n)
		}
	}
	h := fams["ark_task_serve_time_to_first_token_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() != 4.2 || len(h.GetBucket()) < 2 || h.GetBucket()[0].GetCumulativeCount() != 3 || h.GetBucket()[1].GetCumulativeCount() != 4 {
		t.Errorf("TTFT histogram %v, want sum 4.2 and cumulative buckets 3, 4", h)
	}
}

// reportingAgent is an agent with two running tasks of two jobs in two
// namespaces, and servers that fail the test if a report of metrics
// alone reaches them.
func reportingAgent(t *testing.T) (*Agent, http.Handler) {
	t.Helper()
	var forwarded atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() {
		srv.Close()
		if n := forwarded.Load(); n != 0 {
			t.Errorf("%d reports of metrics alone were passed to the servers", n)
		}
	})
	c, err := client.New(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{
		reportKey: []byte("0123456789abcdef0123456789abcdef"), cfg: Config{Name: "node-7"}, log: zap.NewNop(), client: c,
		tasks: map[string]*task{
			"a-0": {alloc: &api.Allocation{ID: "a-0", JobID: "job-a", Namespace: "team-a", Rank: 1}, done: make(chan struct{})},
			"b-0": {alloc: &api.Allocation{ID: "b-0", JobID: "job-b", Namespace: "team-b"}, done: make(chan struct{})},
		},
	}
	return a, a.routes()
}

func post(h http.Handler, id, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/allocations/"+id+"/report", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	fams, err := metricsdoc.Decode(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestTaskMetricsHostile is a task of job A that tries to put figures
// under job B, to forge its labels, and to blow up the agent's series:
// every attempt is refused or bounded, and job B's series never appear.
func TestTaskMetricsHostile(t *testing.T) {
	a, h := reportingAgent(t)
	tokenA := a.taskToken("a-0")
	many := map[string]uint64{}
	for i := range 40 {
		many[fmt.Sprintf("ad-%02d", i)] = 1
	}
	manyJSON := `{"metrics":{"serve":{"requests":{`
	for i := range 40 {
		manyJSON += fmt.Sprintf(`"ad-%02d":1,`, i)
	}
	manyJSON = strings.TrimSuffix(manyJSON, ",") + `}}}}`
	for _, tc := range []struct {
		name, id, body string
		code           int
	}{
		{"A's token on B's allocation", "b-0", `{"metrics":{"train":{"step":1,"loss":1,"tokensPerSecond":1}}}`, http.StatusUnauthorized},
		{"a job label of its own", "a-0", `{"job":"job-b","metrics":{"train":{"step":1,"loss":1,"tokensPerSecond":1}}}`, http.StatusBadRequest},
		{"labels inside the figures", "a-0", `{"metrics":{"train":{"step":1,"loss":1,"tokensPerSecond":1,"labels":{"job":"job-b"}}}}`, http.StatusBadRequest},
		{"a family of its own", "a-0", `{"metrics":{"ark_task_train_step{job=\"job-b\"}":1}}`, http.StatusBadRequest},
		{"label injection through an adapter name", "a-0", `{"metrics":{"serve":{"requests":{"x\",job=\"job-b":1}}}}`, http.StatusBadRequest},
		{"an unknown rule action", "a-0", `{"metrics":{"serve":{"ruleActions":{"drop-table":1}}}}`, http.StatusBadRequest},
		{"a huge histogram", "a-0", `{"metrics":{"serve":{"ttftSeconds":{"bounds":[` + strings.Repeat("1,", 40) + `2],"counts":[1],"sum":1}}}}`, http.StatusBadRequest},
		{"a NaN loss", "a-0", `{"metrics":{"train":{"step":1,"loss":"NaN","tokensPerSecond":1}}}`, http.StatusBadRequest},
		{"40 adapters", "a-0", manyJSON, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := post(h, tc.id, tokenA, tc.body); rec.Code != tc.code {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tc.code)
			}
		})
	}
	fams := scrape(t, h)
	for name, f := range fams {
		if !strings.HasPrefix(name, "ark_task_") {
			continue
		}
		for _, m := range f.GetMetric() {
			if l := labelsOf(m); l["job"] != "job-a" || l["namespace"] != "team-a" || l["rank"] != "1" || l["node"] != "node-7" {
				t.Errorf("%s has a series labelled %v: only job-a's task reported", name, l)
			}
		}
	}
	reqs := fams["ark_task_serve_requests_total"].GetMetric()
	if len(reqs) != api.MaxTaskAdapters+1 {
		t.Fatalf("%d request series for 40 adapters, want %d (the rest in %s)", len(reqs), api.MaxTaskAdapters+1, api.OtherAdapters)
	}
	total := 0.0
	for _, m := range reqs {
		total += m.GetCounter().GetValue()
		if l := labelsOf(m)["adapter"]; l == api.OtherAdapters && m.GetCounter().GetValue() != 40-api.MaxTaskAdapters {
			t.Errorf("%s holds %v requests, want %d", api.OtherAdapters, m.GetCounter().GetValue(), 40-api.MaxTaskAdapters)
		}
	}
	if total != 40 {
		t.Errorf("%v requests in all, want 40", total)
	}
}

// TestTaskMetricsEnd: a finished task's figures leave /metrics, and a
// report for it is refused.
func TestTaskMetricsEnd(t *testing.T) {
	a, h := reportingAgent(t)
	if rec := post(h, "b-0", a.taskToken("b-0"), `{"metrics":{"train":{"step":3,"loss":1.5,"tokensPerSecond":10}}}`); rec.Code != http.StatusNoContent {
		t.Fatalf("report: %d %s", rec.Code, rec.Body)
	}
	if n := len(scrape(t, h)["ark_task_train_step"].GetMetric()); n != 1 {
		t.Fatalf("%d step series, want 1", n)
	}
	close(a.tasks["b-0"].done)
	if f := scrape(t, h)["ark_task_train_step"]; f != nil {
		t.Errorf("a finished task still exports %v", f)
	}
	if rec := post(h, "b-0", a.taskToken("b-0"), `{"metrics":{"train":{"step":4,"loss":1.5,"tokensPerSecond":10}}}`); rec.Code != http.StatusNotFound {
		t.Errorf("report after the end: %d, want 404", rec.Code)
	}
}

func TestParseHealthMetrics(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"running":1}`, false},
		{`ok`, false},
		{`{"running":1,"metrics":{"serve":{"running":1,"requests":{"":2}}}}`, true},
		{`{"metrics":{"serve":{"running":-1}}}`, false},
		{`{"metrics":{"serve":{"requests":{"a b":1}}}}`, false},
		{`{"metrics":null}`, false},
	} {
		if got := parseHealthMetrics([]byte(tc.body)) != nil; got != tc.want {
			t.Errorf("%s: figures %v, want %v", tc.body, got, tc.want)
		}
	}
}

// TestTaskMetricsNotForTasks: with tokens on, a task on the node scraped
// its agent's /metrics and read every other tenant's job IDs and
// namespaces from the task families. They now go only to the servers'
// credential (the logs key) and to the --metrics-listen listener; the GPU
// and agent families stay open, like DCGM's exporter.
func TestTaskMetricsNotForTasks(t *testing.T) {
	a, h := reportingAgent(t)
	a.logsKey = "logs-key-of-this-node"
	if rec := post(h, "b-0", a.taskToken("b-0"), `{"metrics":{"train":{"step":3,"loss":1.5,"tokensPerSecond":10}}}`); rec.Code != http.StatusNoContent {
		t.Fatalf("report: %d %s", rec.Code, rec.Body)
	}
	get := func(h http.Handler, bearer string) string {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	all, _ := a.metricsHandlers()
	for _, tc := range []struct {
		name     string
		h        http.Handler
		bearer   string
		taskFams bool
	}{
		{"no token", h, "", false},
		{"a task's token", h, a.taskToken("a-0"), false},
		{"the logs key", h, "logs-key-of-this-node", true},
		{"the metrics listener", all, "", true},
	} {
		body := get(tc.h, tc.bearer)
		if got := strings.Contains(body, `job="job-b"`); got != tc.taskFams {
			t.Errorf("%s: task families served %v, want %v", tc.name, got, tc.taskFams)
		}
		if !strings.Contains(body, "ark_agent_tasks_ended_total") {
			t.Errorf("%s: the agent's own families are missing", tc.name)
		}
	}
}
