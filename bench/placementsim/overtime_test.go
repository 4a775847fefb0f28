package placementsim

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
)

func gpuTask(gpus int) placement.Task {
	return placement.Task{CPUMilli: 1000, Memory: 1024, GPUs: gpus, GPUMilli: placement.MilliPerGPU}
}

func oneNode(gpus int) []Node {
	return []Node{{Name: "n0", CPUMilli: 64000, MemoryMiB: 262144, GPUs: gpus, Model: "V100"}}
}

// byName indexes a run's tasks by name.
func byName(s *sim) map[string]*simRun {
	out := map[string]*simRun{}
	for i := range s.tasks {
		out[s.tasks[i].Name] = &s.run[i]
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// arkSim is the over-time simulation running the server's pass with the
// server's configuration for queues, no protection window and a
// checkpoint every checkpoint seconds (0: the default).
func arkSim(queues []placement.Queue, checkpoint float64, edit ...func(*sched.Config)) SimConfig {
	cfg := schedConfig(queues, 0)
	for _, e := range edit {
		e(&cfg)
	}
	return SimConfig{Name: "ark", Sched: &cfg, CheckpointEvery: checkpoint}
}

// TestPreemptionRequeuesFromCheckpoint: a high-priority task that does not
// fit evicts a low-priority one, which loses the work since its last
// checkpoint and runs the rest later; FIFO makes the high one wait.
func TestPreemptionRequeuesFromCheckpoint(t *testing.T) {
	tasks := []SimTask{
		{Name: "low", Task: gpuTask(2), Queue: "q", Priority: PrioLow, Arrive: 0, Duration: 1000},
		{Name: "high", Task: gpuTask(2), Queue: "q", Priority: PrioHigh, Arrive: 100, Duration: 50},
	}
	queues := []placement.Queue{{Name: "q", QuotaGPUs: 2, Weight: 1}}
	ark := simulate(oneNode(2), tasks, arkSim(queues, 60))
	r := byName(ark)
	// low runs 0-100 (checkpoint at 60), high 100-150, low again from 150
	// with 1000-60 s left: done at 1090.
	if r["high"].wait != 0 || r["low"].wait != 50 || r["low"].end != 1090 || r["high"].end != 150 {
		t.Fatalf("ark: high wait %v end %v, low wait %v end %v; want 0/150, 50/1090", r["high"].wait, r["high"].end, r["low"].wait, r["low"].end)
	}
	res := ark.res
	if res.Preemptions != 1 || !near(res.LostGPUHours, 40*2/3600.0) {
		t.Errorf("ark: %d preemptions, %.6f GPU-h lost; want 1, 40 s x 2 GPUs", res.Preemptions, res.LostGPUHours)
	}
	// Allocated 200 + 100 + 1880 GPU-s over 2 GPUs x 1090 s: 100%.
	if res.MakespanSec != 1090 || !near(res.UtilMakespanPct, 100) || res.MeanWaitSec != 25 {
		t.Errorf("ark: makespan %v util %v mean wait %v; want 1090, 100, 25", res.MakespanSec, res.UtilMakespanPct, res.MeanWaitSec)
	}
	if g := res.ByPriority[0]; g.Name != "high" || g.MeanWaitSec != 0 {
		t.Errorf("ark: first class %+v, want high with no wait", g)
	}

	fifo := simulate(oneNode(2), tasks, SimConfig{Name: "fifo", Policy: placement.FirstFitPolicy{}})
	r = byName(fifo)
	if r["high"].wait != 900 || r["low"].wait != 0 || fifo.res.Preemptions != 0 || fifo.res.MakespanSec != 1050 {
		t.Errorf("fifo: high wait %v low wait %v, %d preemptions, makespan %v; want 900, 0, 0, 1050",
			r["high"].wait, r["low"].wait, fifo.res.Preemptions, fifo.res.MakespanSec)
	}
}

// TestReclaimBorrowed: a queue past its quota borrows an idle GPU; when a
// queue under its quota needs it, its newest task is evicted whatever the
// priorities.
func TestReclaimBorrowed(t *testing.T) {
	tasks := []SimTask{
		{Name: "b1", Task: gpuTask(1), Queue: "b", Arrive: 0, Duration: 1000},
		{Name: "b2", Task: gpuTask(1), Queue: "b", Arrive: 1, Duration: 1000},
		{Name: "a1", Task: gpuTask(1), Queue: "a", Arrive: 10, Duration: 100},
	}
	queues := []placement.Queue{{Name: "a", QuotaGPUs: 1, Weight: 1, Borrow: true}, {Name: "b", QuotaGPUs: 1, Weight: 1, Borrow: true}}
	s := simulate(oneNode(2), tasks, arkSim(queues, 0))
	r := byName(s)
	// b2 borrows at 1, is evicted at 10 and waits until a1 ends at 110.
	if r["a1"].wait != 0 || r["b1"].end != 1000 || r["b2"].wait != 100 || r["b2"].end != 110+1000 || s.res.Preemptions != 1 {
		t.Errorf("a1 wait %v, b1 end %v, b2 wait %v end %v, %d preemptions; want a1 to reclaim b2's borrowed GPU at 10 (b2 restarts from scratch at 110)",
			r["a1"].wait, r["b1"].end, r["b2"].wait, r["b2"].end, s.res.Preemptions)
	}
	if !near(s.res.LostGPUHours, 9/3600.0) {
		t.Errorf("lost %v GPU-h, want b2's 9 s on one GPU", s.res.LostGPUHours)
	}
}

// TestBackfillKeepsReservation: behind an 8-GPU task waiting for a 4-GPU
// one to end, a short task backfills and a long one does not, so the big
// task starts as soon as the GPUs free up. FIFO first fit lets both run and
// delays the big task until the long one ends.
func TestBackfillKeepsReservation(t *testing.T) {
	tasks := []SimTask{
		{Name: "running", Task: gpuTask(4), Queue: "q", Arrive: 0, Duration: 100},
		{Name: "big", Task: gpuTask(8), Queue: "q", Arrive: 1, Duration: 10},
		{Name: "short", Task: gpuTask(2), Queue: "q", Arrive: 2, Duration: 50},
		{Name: "long", Task: gpuTask(2), Queue: "q", Arrive: 3, Duration: 500},
	}
	queues := []placement.Queue{{Name: "q", Weight: 1}}
	s := simulate(oneNode(8), tasks, arkSim(queues, 0))
	r := byName(s)
	if r["short"].wait != 0 {
		t.Errorf("short task waited %v: it ends before the reservation and should backfill", r["short"].wait)
	}
	if r["big"].wait != 99 {
		t.Errorf("big task waited %v, want 99 (it starts when the running task ends at 100)", r["big"].wait)
	}
	if r["long"].wait != 107 {
		t.Errorf("long task waited %v, want 107 (after the big task)", r["long"].wait)
	}
	// Reservations: the big task, then the long one once the big one runs.
	if s.res.Backfilled != 1 || s.res.Reserved != 2 || s.res.Preemptions != 0 {
		t.Errorf("backfilled %d, reserved %d, preemptions %d; want 1, 2, 0", s.res.Backfilled, s.res.Reserved, s.res.Preemptions)
	}

	fifo := simulate(oneNode(8), tasks, SimConfig{Name: "fifo", Policy: placement.FirstFitPolicy{}})
	r = byName(fifo)
	if r["short"].wait != 0 || r["long"].wait != 0 || r["big"].wait != 502 {
		t.Errorf("fifo: short %v long %v big %v; want 0, 0, 502", r["short"].wait, r["long"].wait, r["big"].wait)
	}
}

// TestSeveralReservations: two 8-GPU tasks wait for different nodes (r0
// fills n0 until 100, r1 half of n1 until 300). With one reservation only
// the first holds a node, and a long task takes the room the second one
// needs on n1; with two, the second holds n1 and the long task waits
// behind both (then holds the third reservation itself). In submission
// order: by runtime, big2 would go first.
func TestSeveralReservations(t *testing.T) {
	nodes := []Node{
		{Name: "n0", CPUMilli: 64000, MemoryMiB: 262144, GPUs: 8, Model: "V100"},
		{Name: "n1", CPUMilli: 64000, MemoryMiB: 262144, GPUs: 8, Model: "V100"},
	}
	tasks := []SimTask{
		{Name: "r0", Task: gpuTask(8), Queue: "q", Arrive: 0, Duration: 100},
		{Name: "r1", Task: gpuTask(4), Queue: "q", Arrive: 0, Duration: 300},
		{Name: "big1", Task: gpuTask(8), Queue: "q", Arrive: 1, Duration: 1000},
		{Name: "big2", Task: gpuTask(8), Queue: "q", Arrive: 2, Duration: 10},
		{Name: "long", Task: gpuTask(4), Queue: "q", Arrive: 3, Duration: 500},
	}
	queues := []placement.Queue{{Name: "q", Weight: 1}}
	for _, tt := range []struct {
		name                 string
		reservations         int
		big1, big2, long     float64
		reserved, backfilled int
	}{
		// big1 holds n0 from 100; long starts on n1 at 3, and big2 waits
		// for it to end at 503.
		{"one", 1, 99, 501, 0, 2, 1},
		// big2 holds n1 from 300; long (500 s) may use neither node, and
		// starts when big2 ends at 310.
		{"two", 2, 99, 298, 307, 3, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := simulate(nodes, tasks, arkSim(queues, 0, func(c *sched.Config) {
				c.MaxReservations, c.Order = tt.reservations, sched.OrderSubmission
			}))
			r := byName(s)
			if r["big1"].wait != tt.big1 || r["big2"].wait != tt.big2 || r["long"].wait != tt.long {
				t.Errorf("waits big1 %v big2 %v long %v, want %v %v %v", r["big1"].wait, r["big2"].wait, r["long"].wait, tt.big1, tt.big2, tt.long)
			}
			if s.res.Reserved != tt.reserved || s.res.Backfilled != tt.backfilled {
				t.Errorf("reserved %d backfilled %d, want %d %d", s.res.Reserved, s.res.Backfilled, tt.reserved, tt.backfilled)
			}
		})
	}
}

// TestWaitAndUtilisationMath checks the figures on a run small enough to
// do by hand.
func TestWaitAndUtilisationMath(t *testing.T) {
	tasks := []SimTask{
		{Name: "a", Task: gpuTask(1), Arrive: 0, Duration: 10},
		{Name: "b", Task: gpuTask(1), Arrive: 0.5, Duration: 10}, // seen by the pass at 1, starts at 10
		{Name: "c", Task: gpuTask(1), Arrive: 30, Duration: 10},
		{Name: "huge", Task: gpuTask(2), Arrive: 31, Duration: 10}, // fits no node
	}
	res := Simulate(oneNode(1), tasks, SimConfig{Name: "fifo", Policy: placement.FirstFitPolicy{}})
	if res.Tasks != 4 || res.NeverFit != 1 || res.Completed != 3 || res.Placed != 3 {
		t.Fatalf("%+v", res)
	}
	if !near(res.MeanWaitSec, 9.5/3) || res.P95WaitSec != 0 {
		t.Errorf("mean wait %v p95 %v; want 9.5/3 and 0 (nearest rank below of 0, 0, 9.5)", res.MeanWaitSec, res.P95WaitSec)
	}
	// Busy 0-20 and 30-40 on one GPU; makespan 0-40; arrivals 0-31.
	if res.MakespanSec != 40 || !near(res.UtilMakespanPct, 75) || !near(res.UtilPct, 100*21/31.0) || res.LastStartSec != 30 {
		t.Errorf("makespan %v util %v (arrivals %v) last start %v; want 40, 75, %v, 30", res.MakespanSec, res.UtilMakespanPct, res.UtilPct, res.LastStartSec, 100*21/31.0)
	}
	if w := waitStats("x", []float64{5, 1, 3, 2, 4}); w.MeanWaitSec != 3 || w.P95WaitSec != 4 {
		t.Errorf("waitStats = %+v, want mean 3, p95 4", w)
	}
}

// TestSimulateInvariants runs a contended slice of the default list through
// every scheduler and the several-reservation variants: every task that
// fits a node completes, nothing is left allocated, and the per-class
// counts add up.
func TestSimulateInvariants(t *testing.T) {
	small := contendedNodes(t)
	list := defaultList(t)
	gpus := 0
	for _, n := range small {
		gpus += n.GPUs
	}
	queues := SimQueues(gpus)
	tasks := SimTasks(list[len(list)-600:], 2000, queues, 3, 0)
	for _, name := range OverTimeSchedulers {
		cfg, err := overTimeConfig(name, queues, 600, 0)
		if err != nil {
			t.Fatal(err)
		}
		s := simulate(small, tasks, cfg)
		res := s.res
		if res.Completed+res.NeverFit != res.Tasks || res.Completed == 0 {
			t.Fatalf("%s: %d completed + %d never fit != %d", name, res.Completed, res.NeverFit, res.Tasks)
		}
		if s.used != 0 {
			t.Errorf("%s: %d milli-GPU still allocated", name, s.used)
		}
		for i, n := range s.nodes {
			e := s.empty[i]
			if n.CPUFree != e.CPUFree || n.MemFree != e.MemFree || n.FreeMilli() != e.FreeMilli() {
				t.Fatalf("%s: node %s not free at the end", name, n.Name)
			}
		}
		sum := 0
		for _, g := range res.ByPriority {
			sum += g.Tasks
		}
		if sum != res.Completed {
			t.Errorf("%s: classes count %d tasks, %d completed", name, sum, res.Completed)
		}
		if name == "fifo" && (res.Preemptions != 0 || res.Backfilled != 0) {
			t.Errorf("fifo preempted or backfilled: %+v", res)
		}
		if name == "ark" && res.Preemptions == 0 {
			t.Errorf("ark never preempted on a contended slice: %+v", res)
		}
		if res.PlanRejected != 0 {
			t.Errorf("%s: the leader's re-check dropped %d placements of plans made on the same state", name, res.PlanRejected)
		}
		if s.ark != nil {
			if len(s.ark.live) != 0 {
				t.Errorf("%s: %d allocations still live at the end", name, len(s.ark.live))
			}
			for i, j := range s.ark.jobs {
				if j != nil && s.run[i].state == done && j.Status != api.JobSucceeded {
					t.Errorf("%s: task %d finished but its job is %s", name, i, j.Status)
				}
			}
		}
	}
}

// TestSchedulerRowsJSON: --over-time --json prints one row per scheduler
// under "schedulers", FIFO first fit first even when not asked first,
// with the keys.
func TestSchedulerRowsJSON(t *testing.T) {
	pods := []Pod{
		{Name: "a", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 2, GPUMilli: 1000, QoS: "BE", Created: 0, Scheduled: 0, Deleted: 100},
		{Name: "b", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 500, QoS: "LS", Created: 10, Scheduled: 10, Deleted: 60},
		{Name: "c", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 1000, QoS: "LS", Created: 11, Scheduled: 11, Deleted: 40},
	}
	res, err := runOverTime(oneNode(2), pods, Options{Schedulers: []string{"ark"}, TimeScale: 1, CheckpointEvery: 60}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := Report{Schedulers: schedulerRows(res)}
	var buf strings.Builder
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Schedulers []map[string]any `json:"schedulers"`
	}
	if err := json.Unmarshal([]byte(buf.String()), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Schedulers) != 2 || got.Schedulers[0]["name"] != "fifo" || got.Schedulers[1]["name"] != "ark" {
		t.Fatalf("schedulers = %v, want fifo then ark", got.Schedulers)
	}
	for _, row := range got.Schedulers {
		for _, k := range []string{"name", "mean_wait_s", "p95_wait_s", "by_class", "preemptions", "gpu_hours_lost"} {
			if _, ok := row[k]; !ok {
				t.Errorf("row %v has no %q", row["name"], k)
			}
		}
		classes, _ := row["by_class"].(map[string]any)
		for _, k := range []string{"high", "normal", "low", "share", "1gpu", "multi_gpu"} {
			if _, ok := classes[k]; !ok {
				t.Errorf("row %v: by_class has no %q", row["name"], k)
			}
		}
	}
	// b (a share, high) and c (one GPU, high) arrive while the low 2-GPU
	// task a fills the node: Ark evicts a for them; FIFO makes them wait.
	fifo, ark := got.Schedulers[0], got.Schedulers[1]
	if ark["preemptions"].(float64) < 1 || fifo["preemptions"].(float64) != 0 {
		t.Errorf("preemptions fifo %v ark %v, want 0 and at least 1", fifo["preemptions"], ark["preemptions"])
	}
	if h := ark["by_class"].(map[string]any)["high"].(float64); h >= fifo["by_class"].(map[string]any)["high"].(float64) {
		t.Errorf("high-priority wait under ark %v, not below fifo's %v", h, fifo["by_class"].(map[string]any)["high"])
	}
}

// TestShortestSchedulerNames: ark-shortest[-ageS][-tiers][-nopreempt] configure
// the shipped pass's OrderShortest, ark-shortestall[-ageS] its
// OrderShortestAll; a malformed name is refused.
func TestShortestSchedulerNames(t *testing.T) {
	for _, tc := range []struct {
		name      string
		age       time.Duration
		nopreempt bool
		ok        bool
		tiers     bool
		all       bool
	}{
		{"ark-shortestall", 0, false, true, false, true},
		{"ark-shortestall-age180", 180 * time.Second, false, true, false, true},
		{"ark-shortestall-age180-tiers", 0, false, false, false, false},
		{"ark-shortestall-agex", 0, false, false, false, false},
		{"ark-shortest", 0, false, true, false, false},
		{"ark-shortest-age600", 600 * time.Second, false, true, false, false},
		{"ark-shortest-age900-nopreempt", 900 * time.Second, true, true, false, false},
		{"ark-shortest-nopreempt", 0, true, true, false, false},
		{"ark-shortest-age180-tiers", 180 * time.Second, false, true, true, false},
		{"ark-shortest-age180-tiers-nopreempt", 180 * time.Second, true, true, true, false},
		{"ark-shortest-age0", 0, false, false, false, false},
		{"ark-shortest-agex", 0, false, false, false, false},
		{"ark-shortest-fast", 0, false, false, false, false},
		{"ark-shortest-age180-nopreempt-tiers", 0, false, false, false, false},
	} {
		c, err := overTimeConfig(tc.name, nil, 1800, 600)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		order := sched.OrderShortest
		if tc.all {
			order = sched.OrderShortestAll
		}
		if c.Sched.Order != order || c.Sched.AgeAfter != tc.age || c.Sched.NoPreemption != tc.nopreempt || c.Sched.AgeTiers != tc.tiers {
			t.Errorf("%s: order %q age %v nopreempt %v tiers %v", tc.name, c.Sched.Order, c.Sched.AgeAfter, c.Sched.NoPreemption, c.Sched.AgeTiers)
		}
	}
}

// contendedNodes are 40 of openb's nodes, 30 of 8 GPUs and 10 of 2: with
// the default list's last 600 tasks, a slice where jobs wait.
func contendedNodes(t *testing.T) []Node {
	t.Helper()
	nodes, err := LoadNodes(filepath.Join(DataDir(), "openb_node_list_gpu_node.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var small []Node
	for _, n := range nodes {
		if (n.GPUs == 8 && len(small) < 30) || (n.GPUs == 2 && len(small) >= 30 && len(small) < 40) {
			small = append(small, n)
		}
	}
	return small
}

// TestIdleAndStrandedGPUs: after a pass that leaves a task waiting, the
// GPUs nothing holds are idle, and whole ones on a node whose CPU or
// memory no waiting task fits in are stranded.
func TestIdleAndStrandedGPUs(t *testing.T) {
	share := func(milli int64) placement.Task {
		return placement.Task{CPUMilli: 1000, Memory: 1024, GPUs: 1, GPUMilli: milli}
	}
	cpuHog := placement.Task{CPUMilli: 8000, Memory: 1024, GPUs: 1, GPUMilli: placement.MilliPerGPU}
	node := func(gpus int, cpu int64) []Node {
		return []Node{{Name: "n0", CPUMilli: cpu, MemoryMiB: 262144, GPUs: gpus, Model: "V100"}}
	}
	for _, c := range []struct {
		name           string
		nodes          []Node
		first, waiter  placement.Task
		idle, stranded float64
	}{
		{"CPU used up: 3 whole GPUs stranded", node(4, 8000), cpuHog, gpuTask(1), 3, 3},
		{"GPUs used up: nothing idle", node(2, 64000), gpuTask(2), gpuTask(1), 0, 0},
		{"a share's leftover is idle, not stranded", node(1, 64000), share(600), share(600), 0.4, 0},
		{"one GPU left for a 2-GPU task: idle, not stranded", node(3, 64000), gpuTask(2), gpuTask(2), 1, 0},
	} {
		tasks := []SimTask{
			{Name: "first", Task: c.first, Queue: "q", Arrive: 0, Duration: 100},
			{Name: "waiter", Task: c.waiter, Queue: "q", Arrive: 0.5, Duration: 10},
		}
		res := Simulate(c.nodes, tasks, SimConfig{Name: "fifo", Policy: placement.FirstFitPolicy{}})
		if !near(res.IdleGPUs, c.idle) || !near(res.StrandedGPUs, c.stranded) {
			t.Errorf("%s: idle %v, stranded %v GPUs; want %v, %v", c.name, res.IdleGPUs, res.StrandedGPUs, c.idle, c.stranded)
		}
	}
}
