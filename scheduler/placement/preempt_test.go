package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

func prio(p int) func(*spec.Job) { return func(s *spec.Job) { s.Priority = p } }

func maxRuntime(d time.Duration) func(*spec.Job) {
	return func(s *spec.Job) { s.MaxRuntime = spec.Duration(d) }
}

// withPrio sets the job's priority on the api.Job as the server does.
func withPrio(j *api.Job) *api.Job { j.Priority = j.Spec.Priority; return j }

// gangAlloc is rank rank of job jobID on nodeID.
func gangAlloc(jobID string, rank int, nodeID string, gpus ...int) *api.Allocation {
	a := live(jobID+"-"+string(rune('0'+rank)), nodeID, gpus...)
	a.JobID = jobID
	a.Rank = rank
	return a
}

func withJob(a *api.Allocation, jobID string) *api.Allocation { a.JobID = jobID; return a }

func stopping(a *api.Allocation) *api.Allocation { a.DesiredStatus = api.DesiredStop; return a }

func run(p int, since, ends float64) RunInfo {
	return RunInfo{Priority: p, SinceCheckpoint: since, EndsIn: ends}
}

var inf = math.Inf(1)

func TestPreemption(t *testing.T) {
	tests := []struct {
		name        string
		in          Input
		preemptions []Preemption
		placed      map[string]string
		pending     map[string]string // job -> substrings ("|"-separated)
	}{
		{
			name: "the victim with the least work since its checkpoint",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3), gangAlloc("b", 0, "id-n1", 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": run(10, 100, inf), "b-0": run(10, 10, inf)},
				Pending: []*api.Job{withPrio(job("x", 1, 4, prio(100)))},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"b"}, LostGPUSeconds: 40}},
			pending:     map[string]string{"x": "preempting b"},
		},
		{
			name: "lower priority first when the work lost is equal",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3), gangAlloc("b", 0, "id-n1", 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": run(5, 10, inf), "b-0": run(20, 10, inf)},
				Pending: []*api.Job{withPrio(job("x", 1, 4, prio(100)))},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"a"}, LostGPUSeconds: 40}},
		},
		{
			name: "a protected (just restarted) allocation is passed over",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3), gangAlloc("b", 0, "id-n1", 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": run(10, 100, inf), "b-0": {Priority: 10, SinceCheckpoint: 1, EndsIn: inf, Protected: true}},
				Pending: []*api.Job{withPrio(job("x", 1, 4, prio(100)))},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"a"}, LostGPUSeconds: 400}},
		},
		{
			name: "over its queue's quota: its own queue's lower-priority work goes, even with GPUs idle",
			in: Input{
				Nodes:  []*api.Node{h200("n1", 8)},
				Allocs: []*api.Allocation{gangAlloc("own", 0, "id-n1", 0, 1, 2, 3), gangAlloc("other", 0, "id-n1", 4, 5)},
				Run: map[string]RunInfo{
					"own-0":   {Priority: 10, Queue: "q1", SinceCheckpoint: 500, EndsIn: inf},
					"other-0": {Priority: 10, Queue: "q2", SinceCheckpoint: 1, EndsIn: inf},
				},
				Pending:   []*api.Job{func() *api.Job { j := withPrio(job("x", 1, 2, prio(50))); j.Queue = "q1"; return j }()},
				QuotaNeed: map[string]int64{"x": 2000},
				Preempt:   true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"own"}, LostGPUSeconds: 2000}},
			pending:     map[string]string{"x": "queue q1 is at its quota|preempting own"},
		},
		{
			name: "over quota with no lower-priority work of its own queue: it waits",
			in: Input{
				Nodes:     []*api.Node{h200("n1", 8)},
				Allocs:    []*api.Allocation{gangAlloc("other", 0, "id-n1", 4, 5)},
				Run:       map[string]RunInfo{"other-0": {Priority: 10, Queue: "q2", EndsIn: inf}},
				Pending:   []*api.Job{func() *api.Job { j := withPrio(job("x", 1, 2, prio(50))); j.Queue = "q1"; return j }()},
				QuotaNeed: map[string]int64{"x": 2000},
				Preempt:   true,
			},
			pending: map[string]string{"x": "waiting for quota: queue q1 is at its quota and 2 GPU(s)"},
		},
		{
			name: "a gang with one rank that may not go is kept whole",
			in: Input{
				Nodes: []*api.Node{h200("n1", 4), h200("n2", 4)},
				Allocs: []*api.Allocation{
					gangAlloc("g", 0, "id-n1", 0, 1, 2, 3), gangAlloc("g", 1, "id-n2", 0, 1, 2, 3),
				},
				Run:     map[string]RunInfo{"g-0": run(10, 5, inf), "g-1": {Priority: 10, EndsIn: inf, Protected: true}},
				Pending: []*api.Job{withPrio(job("x", 1, 4, prio(100)))},
				Preempt: true,
			},
			pending: map[string]string{"x": "free"},
		},
		{
			name: "equal priority evicts nothing",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": run(50, 10, inf)},
				Pending: []*api.Job{withPrio(job("x", 1, 4))},
				Preempt: true,
			},
			pending: map[string]string{"x": "free"},
		},
		{
			name: "preemption off",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": run(1, 10, inf)},
				Pending: []*api.Job{withPrio(job("x", 1, 4, prio(100)))},
			},
			pending: map[string]string{"x": "free"},
		},
		{
			name: "a gang is evicted whole and its lost work counts on every node",
			in: Input{
				Nodes: []*api.Node{h200("n1", 8), h200("n2", 8)},
				Allocs: []*api.Allocation{
					gangAlloc("g", 0, "id-n1", 0, 1, 2, 3), gangAlloc("g", 1, "id-n2", 0, 1, 2, 3),
					gangAlloc("s", 0, "id-n1", 4, 5, 6, 7),
					gangAlloc("t", 0, "id-n2", 4, 5, 6, 7),
				},
				Run: map[string]RunInfo{
					"g-0": run(10, 30, inf), "g-1": run(10, 30, inf),
					"s-0": run(10, 50, inf), "t-0": run(60, 1, inf),
				},
				// 8 GPUs on one node: n1 by evicting g (240 GPU-s, both ranks) and s (200),
				// or n2 by evicting g and t (t outranks nothing: priority 60 > 55).
				Pending: []*api.Job{withPrio(job("x", 1, 8, prio(55)))},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"g", "s"}, LostGPUSeconds: 440}},
		},
		{
			name: "shares: the victim whose GPU memory is needed, not just the cheapest",
			in: Input{
				Nodes: []*api.Node{h200("n1", 1)},
				Allocs: []*api.Allocation{
					withJob(liveShare("a-0", "id-n1", 0, 500, 100*gi), "a"),
					withJob(liveShare("b-0", "id-n1", 0, 400, 30*gi), "b"),
				},
				Run:     map[string]RunInfo{"a-0": run(10, 100, inf), "b-0": run(10, 1, inf)},
				Pending: []*api.Job{withPrio(job("x", 1, 1, prio(90), share(300, "60Gi")))},
				Preempt: true,
			},
			// Evicting b (cheaper) frees milli but leaves 41Gi: a is needed, and then b is not.
			preemptions: []Preemption{{JobID: "x", Victims: []string{"a"}, LostGPUSeconds: 100}},
		},
		{
			name: "a multi-node gang preempts for every replica",
			in: Input{
				Nodes: []*api.Node{h200("n1", 8), h200("n2", 8)},
				Allocs: []*api.Allocation{
					gangAlloc("a", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7),
					gangAlloc("b", 0, "id-n2", 0, 1, 2, 3, 4, 5, 6, 7),
				},
				Run:     map[string]RunInfo{"a-0": run(10, 5, inf), "b-0": run(10, 6, inf)},
				Pending: []*api.Job{withPrio(job("x", 2, 8, prio(100)))},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"a", "b"}, LostGPUSeconds: 88}},
		},
		{
			name: "borrowed capacity is reclaimed by a job within its quota, whatever the priority",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": {Priority: 900, SinceCheckpoint: 5, EndsIn: inf, Borrowed: true}},
				Pending: []*api.Job{withPrio(job("x", 1, 8))},
				Reclaim: map[string]bool{"x": true},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"a"}, LostGPUSeconds: 40, Reclaim: true}},
		},
		{
			name: "borrowed capacity stays when the job is itself past its quota",
			in: Input{
				Nodes:   []*api.Node{h200("n1", 8)},
				Allocs:  []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7)},
				Run:     map[string]RunInfo{"a-0": {Priority: 900, SinceCheckpoint: 5, EndsIn: inf, Borrowed: true}},
				Pending: []*api.Job{withPrio(job("x", 1, 8))},
				Preempt: true,
			},
			pending: map[string]string{"x": "free"},
		},
		{
			name: "allocations already stopping are not victims, and a preemptor waits for its own",
			in: Input{
				Nodes:  []*api.Node{h200("n1", 8)},
				Allocs: []*api.Allocation{stopping(gangAlloc("v", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7))},
				Run:    map[string]RunInfo{"v-0": run(1, 5, inf)},
				Pending: []*api.Job{func() *api.Job {
					j := withPrio(job("x", 1, 8, prio(100)))
					j.Preempting = []string{"v"}
					return j
				}()},
				Preempt: true,
			},
			pending: map[string]string{"x": "waiting for preempted job(s) v to stop"},
		},
		{
			name: "one pass does not evict the same gang for two jobs",
			in: Input{
				Nodes:  []*api.Node{h200("n1", 8)},
				Allocs: []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3, 4, 5, 6, 7)},
				Run:    map[string]RunInfo{"a-0": run(1, 5, inf)},
				Pending: []*api.Job{
					withPrio(job("x", 1, 8, prio(100))),
					withPrio(job("y", 1, 4, prio(100))),
				},
				Preempt: true,
			},
			preemptions: []Preemption{{JobID: "x", Victims: []string{"a"}, LostGPUSeconds: 40}},
			pending:     map[string]string{"x": "preempting a", "y": "free"},
		},
		{
			name: "the preemptor goes before earlier jobs once its victims are gone",
			in: Input{
				Nodes: []*api.Node{h200("n1", 8)},
				Pending: []*api.Job{
					withPrio(job("early", 1, 8)),
					func() *api.Job {
						j := withPrio(job("x", 1, 8, prio(100)))
						j.Preempting = []string{"v"}
						return j
					}(),
				},
				Preempt: true,
			},
			placed:  map[string]string{"x": "0@n1[0 1 2 3 4 5 6 7]"},
			pending: map[string]string{"early": "free"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Place(tt.in)
			// Every preemption names the nodes held for its job (the
			// cases below check the victims; holds are TestPreemptionHolds').
			got := make([]Preemption, len(res.Preemptions))
			for i, p := range res.Preemptions {
				if len(p.Nodes) == 0 {
					t.Errorf("preemption for %s holds no nodes", p.JobID)
				}
				p.Nodes = nil
				got[i] = p
			}
			if len(got) == 0 {
				got = res.Preemptions
			}
			if !reflect.DeepEqual(got, tt.preemptions) {
				t.Errorf("preemptions = %+v, want %+v", res.Preemptions, tt.preemptions)
			}
			checkResult(t, res, tt.placed, tt.pending)
		})
	}
}

func TestBackfill(t *testing.T) {
	// n1: 4 of 8 GPUs held by "a" (ends in 100 s when declared);
	// n2: all 8 held by "b" with no declared end. The head-of-line job h
	// needs 8 GPUs on one node: n1 once a ends.
	nodes := []*api.Node{h200("n1", 8), h200("n2", 8)}
	allocs := []*api.Allocation{gangAlloc("a", 0, "id-n1", 0, 1, 2, 3), gangAlloc("b", 0, "id-n2", 0, 1, 2, 3, 4, 5, 6, 7)}
	pending := []*api.Job{
		job("h", 1, 8),
		job("nolimit", 1, 4),
		job("long", 1, 4, maxRuntime(500*time.Second)),
		job("short", 1, 4, maxRuntime(50*time.Second)),
	}
	tests := []struct {
		name     string
		aEnds    float64
		backfill bool
		placed   map[string]string
		pending  map[string]string
	}{
		{
			name: "only work that ends before the held job starts uses its nodes", aEnds: 100, backfill: true,
			placed: map[string]string{"short": "0@n1[4 5 6 7]"},
			pending: map[string]string{
				"h":       "free",
				"nolimit": "n1 held for job h for about 100s",
				"long":    "n1 held for job h for about 100s",
			},
		},
		{
			name: "an unknown end holds the nodes for everyone", aEnds: inf, backfill: true,
			pending: map[string]string{
				"h":       "free",
				"nolimit": "held for job h until it starts",
				"long":    "held for job h until it starts",
				"short":   "held for job h until it starts",
			},
		},
		{
			name: "without backfill the first job that fits takes the room", aEnds: 100,
			placed:  map[string]string{"nolimit": "0@n1[4 5 6 7]"},
			pending: map[string]string{"h": "free", "long": "free", "short": "free"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Nodes: nodes, Allocs: allocs, Pending: pending, Backfill: tt.backfill,
				Run: map[string]RunInfo{"a-0": run(50, 0, tt.aEnds), "b-0": run(50, 0, inf)}}
			res := Place(in)
			checkResult(t, res, tt.placed, tt.pending)
		})
	}
}

// checkResult compares placements (asg form) and pending reasons (each
// "|"-separated substring must appear).
func checkResult(t *testing.T, res Result, placed, pending map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, p := range res.Placements {
		got[p.JobID] = asg(p)
	}
	if len(got) != len(placed) {
		t.Errorf("placed %v, want %v", got, placed)
	}
	for id, want := range placed {
		if got[id] != want {
			t.Errorf("job %s placed at %q, want %q", id, got[id], want)
		}
	}
	for id, want := range pending {
		why, ok := res.Unplaced[id]
		if !ok {
			t.Errorf("job %s not pending (placed %v)", id, got)
			continue
		}
		for _, sub := range strings.Split(want, "|") {
			if !strings.Contains(why, sub) {
				t.Errorf("job %s reason %q lacks %q", id, why, sub)
			}
		}
	}
}

// TestPropertyPreemptionFrees: over random clusters of whole and shared
// allocations with random priorities, every preemption Place asks for
// evicts only lower-priority (or reclaimed borrowed) gangs, never the same
// gang twice, and is never wasted: with its victims gone, the job places.
func TestPropertyPreemptionFrees(t *testing.T) {
	preempted := 0
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 7))
		var nodes []*api.Node
		var allocs []*api.Allocation
		run := map[string]RunInfo{}
		jobPrio := map[string]int{}
		for i := 0; i < 1+rng.IntN(5); i++ {
			n := h200(fmt.Sprintf("n%d", i), 1+rng.IntN(8))
			nodes = append(nodes, n)
			for g := 0; g < len(n.GPUs); g++ {
				id := fmt.Sprintf("v%d-%d", i, g)
				var a *api.Allocation
				switch rng.IntN(4) {
				case 0:
					continue
				case 1:
					a = withJob(liveShare(id+"-0", n.ID, g, int64(100+rng.IntN(400)), int64(rng.IntN(3))*30*gi), id)
				default:
					a = gangAlloc(id, 0, n.ID, g)
				}
				allocs = append(allocs, a)
				jobPrio[a.JobID] = rng.IntN(100)
				run[a.ID] = RunInfo{Priority: jobPrio[a.JobID], SinceCheckpoint: float64(rng.IntN(1000)), EndsIn: inf, Borrowed: rng.IntN(5) == 0}
			}
		}
		var opts []func(*spec.Job)
		gpus := 1 + rng.IntN(8)
		if rng.IntN(3) == 0 {
			opts = append(opts, share([]int{200, 500, 900}[rng.IntN(3)], []string{"", "40Gi", "100Gi"}[rng.IntN(3)]))
			gpus = 1
		}
		opts = append(opts, prio(rng.IntN(100)))
		x := withPrio(job("x", 1+rng.IntN(2), gpus, opts...))
		reclaim := rng.IntN(2) == 0
		res := Place(Input{Nodes: nodes, Allocs: allocs, Pending: []*api.Job{x}, Run: run, Preempt: true, Reclaim: map[string]bool{"x": reclaim}})
		if len(res.Placements) > 0 && len(res.Preemptions) > 0 {
			t.Errorf("seed %d: placed and preempted", seed)
			return false
		}
		for _, pr := range res.Preemptions {
			preempted++
			gone := map[string]bool{}
			for _, v := range pr.Victims {
				if gone[v] {
					t.Errorf("seed %d: victim %s twice", seed, v)
					return false
				}
				gone[v] = true
				for _, a := range allocs {
					if a.JobID == v && run[a.ID].Priority >= x.Priority && !(run[a.ID].Borrowed && reclaim) {
						t.Errorf("seed %d: victim %s (priority %d, borrowed %v) for job of priority %d, reclaim %v",
							seed, v, run[a.ID].Priority, run[a.ID].Borrowed, x.Priority, reclaim)
						return false
					}
				}
			}
			var left []*api.Allocation
			for _, a := range allocs {
				if !gone[a.JobID] {
					left = append(left, a)
				}
			}
			if again := Place(Input{Nodes: nodes, Allocs: left, Pending: []*api.Job{x}}); len(again.Placements) != 1 {
				t.Errorf("seed %d: evicting %v does not make room: %v", seed, pr.Victims, again.Unplaced)
				return false
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 500}); err != nil {
		t.Error(err)
	}
	if preempted < 50 {
		t.Errorf("only %d of 500 cases preempted: the generator does not exercise preemption", preempted)
	}
	t.Logf("%d of 500 cases preempted", preempted)
}

// TestPreemptionHolds: nodes a committed preemption freed are closed to
// every job but the preemptor, which takes them; a job behind it goes
// elsewhere or waits, and says why.
func TestPreemptionHolds(t *testing.T) {
	p := withPrio(job("p", 1, 8, prio(100)))
	p.Preempting = []string{"v"}
	in := Input{
		Nodes:   []*api.Node{node("n1", 8, "H100", 80), node("n2", 8, "H100", 80)},
		Pending: []*api.Job{job("other", 1, 8), p},
		Holds:   []Hold{{JobID: "p", Nodes: []string{"id-n1"}}},
	}
	res := Place(in)
	checkResult(t, res, map[string]string{"p": "0@n1[0 1 2 3 4 5 6 7]", "other": "0@n2[0 1 2 3 4 5 6 7]"}, nil)

	// Without p, other may not use n1 either while the hold stands.
	in.Pending = []*api.Job{job("other", 2, 8)}
	res = Place(in)
	if why := res.Unplaced["other"]; !strings.Contains(why, "node(s) n1 held for job p, which preempted work there") {
		t.Fatalf("other: %q", why)
	}
}
