package sched

import (
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/spec"
)

// TestAutoscale follows one service's decisions through load over time:
// a step is the replicas' loads at a second, and the count the decision
// leaves (with its reason's start when it changes).
func TestAutoscale(t *testing.T) {
	type step struct {
		at       time.Duration
		loads    []api.ReplicaLoad // running+waiting in Running; Requests answered so far
		want     int
		whyStart string
	}
	load := func(depths ...int) []api.ReplicaLoad {
		out := make([]api.ReplicaLoad, len(depths))
		for i, d := range depths {
			out[i] = api.ReplicaLoad{AllocID: string(rune('a' + i)), Running: d, Requests: int64(100 + d)}
		}
		return out
	}
	idle := func(n int, reqs int64) []api.ReplicaLoad {
		out := make([]api.ReplicaLoad, n)
		for i := range out {
			out[i] = api.ReplicaLoad{AllocID: string(rune('a' + i)), Requests: reqs}
		}
		return out
	}
	queue := &spec.Autoscale{Min: 0, Max: 4, Target: spec.AutoscaleTarget{QueueDepth: 4},
		ScaleOutAfter: spec.Duration(10 * time.Second), ScaleInAfter: spec.Duration(30 * time.Second), IdleToZero: spec.Duration(60 * time.Second)}
	cases := []struct {
		name  string
		a     *spec.Autoscale
		start int
		steps []step
	}{
		{"out after the window, not before", queue, 1, []step{
			{0, load(12), 1, ""},
			{5 * time.Second, load(12), 1, ""},
			{10 * time.Second, load(12), 3, "queue depth 12.0 per replica against the target 4 for 10s"},
		}},
		{"a dip restarts the window", queue, 1, []step{
			{0, load(12), 1, ""},
			{5 * time.Second, load(4), 1, ""},
			{12 * time.Second, load(12), 1, ""},
			{22 * time.Second, load(12), 3, "queue depth"},
		}},
		{"never past max", queue, 2, []step{
			{0, load(40, 40), 2, ""},
			{10 * time.Second, load(40, 40), 4, "queue depth 40.0"},
		}},
		{"within the tolerance it stays", queue, 2, []step{
			{0, load(4, 4), 2, ""},
			{60 * time.Second, load(5, 4), 2, ""},
		}},
		{"in after its longer window, never below 1 while busy", queue, 3, []step{
			{0, load(1, 0, 0), 3, ""},
			{20 * time.Second, load(1, 0, 0), 3, ""},
			{30 * time.Second, load(1, 0, 0), 1, "queue depth 0.3"},
		}},
		{"to zero once idle", queue, 1, []step{
			{0, idle(1, 7), 1, ""}, // the first look cannot tell whether 7 is new
			{time.Second, idle(1, 7), 1, ""},
			{60 * time.Second, idle(1, 7), 1, ""},
			{61 * time.Second, idle(1, 7), 0, "no request for 1m0s"},
		}},
		{"a request resets the idle clock", queue, 1, []step{
			{0, idle(1, 7), 1, ""},
			{time.Second, idle(1, 7), 1, ""},
			{50 * time.Second, idle(1, 8), 1, ""}, // one more answered: busy at 50s
			{51 * time.Second, idle(1, 8), 1, ""}, // idle from here
			{110 * time.Second, idle(1, 8), 1, ""},
			{111 * time.Second, idle(1, 8), 0, "no request"},
		}},
		{"min 1 never goes to zero", &spec.Autoscale{Min: 1, Max: 4, Target: spec.AutoscaleTarget{QueueDepth: 4},
			ScaleOutAfter: spec.Duration(time.Second), ScaleInAfter: spec.Duration(time.Second), IdleToZero: spec.Duration(time.Second)}, 1, []step{
			{0, idle(1, 7), 1, ""},
			{time.Hour, idle(1, 7), 1, ""},
		}},
		{"ttft over the target", &spec.Autoscale{Min: 1, Max: 8, Target: spec.AutoscaleTarget{TTFTMsP90: 500},
			ScaleOutAfter: spec.Duration(time.Second), ScaleInAfter: spec.Duration(time.Second), IdleToZero: spec.Duration(time.Hour)}, 2, []step{
			{0, []api.ReplicaLoad{{AllocID: "a", Running: 1, TTFTP90Ms: 1000}, {AllocID: "b", Running: 1, TTFTP90Ms: 1000}}, 2, ""},
			{time.Second, []api.ReplicaLoad{{AllocID: "a", Running: 1, TTFTP90Ms: 1000}, {AllocID: "b", Running: 1, TTFTP90Ms: 1000}}, 4, "TTFT p90 1000ms against the target 500ms"},
		}},
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := &api.Job{ID: "s", Service: true, Status: api.JobRunning, Spec: spec.Job{Kind: spec.KindInference, Replicas: tc.start, Autoscale: tc.a}}
			var m ScaleMemory
			for _, st := range tc.steps {
				n, why := Autoscale(j, st.loads, &m, t0.Add(st.at))
				if n != st.want || !strings.HasPrefix(why, st.whyStart) || (st.whyStart == "" && why != "") {
					t.Fatalf("at +%s: %d %q, want %d %q", st.at, n, why, st.want, st.whyStart)
				}
				j.Spec.Replicas = n
			}
		})
	}
}

// TestQuotaCap: an autoscaled service in a queue that may not borrow adds
// only the replicas its quota has room for; borrowing queues and queues
// without a quota are not bounded, and scaling in never is.
func TestQuotaCap(t *testing.T) {
	cfg := &Config{Queues: map[string]placement.Queue{
		"tight":  {Name: "tight", QuotaGPUs: 4},
		"borrow": {Name: "borrow", QuotaGPUs: 4, Borrow: true},
	}}
	job := func(queue string, replicas, gpus, milli int) *api.Job {
		return &api.Job{ID: "s", Queue: queue, Spec: spec.Job{Kind: spec.KindInference, Queue: queue, Replicas: replicas,
			Resources: spec.Resources{GPUs: gpus, GPUMilli: milli}}}
	}
	cases := []struct {
		name    string
		j       *api.Job
		used    int64
		n, want int
		capped  bool
	}{
		{"room for all", job("tight", 1, 1, 0), 1000, 3, 3, false},
		{"capped by the quota", job("tight", 1, 1, 0), 2000, 8, 3, true}, // 2 used (1 its own): room for 2 more
		{"no room at all", job("tight", 2, 2, 0), 4000, 4, 2, true},
		{"shares count their fraction", job("tight", 2, 1, 500), 3000, 8, 4, true},
		{"borrowing queue", job("borrow", 1, 1, 0), 4000, 8, 8, false},
		{"no quota", job("other", 1, 1, 0), 9000, 8, 8, false},
		{"scaling in", job("tight", 4, 1, 0), 9000, 2, 2, false},
	}
	for _, tc := range cases {
		got, why := QuotaCap(cfg, tc.j, tc.used, tc.n)
		if got != tc.want || (why != "") != tc.capped {
			t.Errorf("%s: %d %q, want %d (capped %v)", tc.name, got, why, tc.want, tc.capped)
		}
	}
}
