package placementsim

import (
	"container/heap"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
)

// OverTimeResult is one scheduler's trace-driven run with arrivals,
// departures and (for Ark, the server's own pass) queues, preemption and
// backfill.
type OverTimeResult struct {
	Policy      string  `json:"policy"` // node scoring policy
	Tasks       int     `json:"tasks"`
	Placed      int     `json:"placed"`    // started at least once
	NeverFit    int     `json:"never_fit"` // fits no empty node: not queued
	MeanWaitSec float64 `json:"mean_wait_s"`
	P95WaitSec  float64 `json:"p95_wait_s"`
	// MakespanSec is the first arrival to the last completion: on openb it
	// is set by the trace's longest tasks, which run for months.
	MakespanSec float64 `json:"makespan_s"`
	// UtilPct is the allocated GPU time over capacity x the arrival window
	// (first to last arrival).
	UtilPct float64 `json:"gpu_util_pct"`

	Scheduler string `json:"scheduler"` // fifo, ark, ...
	Completed int    `json:"completed"`
	// UtilMakespanPct is the allocated GPU time over capacity x the
	// makespan. Allocated time includes work later lost to preemption.
	UtilMakespanPct float64 `json:"gpu_util_makespan_pct"`
	// LastStartSec is when the last waiting task started (from the first
	// arrival): when the backlog cleared.
	LastStartSec float64 `json:"last_start_s"`
	// Preemptions counts evictions; LostGPUHours the work they threw away
	// (run time since the victim's last checkpoint x its GPUs).
	Preemptions  int     `json:"preemptions"`
	LostGPUHours float64 `json:"lost_gpu_hours"`
	// Backfilled counts tasks a pass started ahead of an older one it
	// held nodes for (backfill); Reserved counts the jobs that held nodes.
	Backfilled int `json:"backfilled"`
	Reserved   int `json:"reserved"`
	// Passes counts the scheduling passes run; PassSeconds is the wall
	// time they took (the shipped pass only).
	Passes      int     `json:"passes"`
	PassSeconds float64 `json:"pass_s"`
	// PlanRejected counts placements the leader's re-check (sched.Verify)
	// dropped: 0 unless the simulation's view and the pass disagree.
	PlanRejected int `json:"plan_rejected"`
	// IdleGPUs is the number of GPUs left unallocated (whole and shares'
	// leftovers, in GPUs) after a pass that leaves GPU tasks waiting;
	// StrandedGPUs is the part of it that is whole free GPUs on nodes
	// whose free CPU or memory fits no waiting task those GPUs could hold
	// (GPUs idle for want of host resources, not of GPUs). Both are means
	// over such passes weighted by the GPU tasks waiting after each.
	IdleGPUs     float64 `json:"idle_gpus_waiting"`
	StrandedGPUs float64 `json:"stranded_gpus_waiting"`
	// RoundsCut counts scheduling points whose passes kept changing the
	// allocations past maxRounds (the rest waits for the next point).
	RoundsCut int `json:"rounds_cut"`
	// Waits by priority class, by size class (SizeClasses) and by queue.
	ByPriority []WaitStats `json:"by_priority"`
	BySize     []WaitStats `json:"by_size"`
	ByQueue    []WaitStats `json:"by_queue,omitempty"`
}

// WaitStats is the queueing delay of a group of completed tasks: total
// time pending, including the waits after each preemption.
type WaitStats struct {
	Name        string  `json:"name"`
	Tasks       int     `json:"tasks"`
	MeanWaitSec float64 `json:"mean_wait_s"`
	P95WaitSec  float64 `json:"p95_wait_s"`
}

// SimConfig is one scheduler of the over-time simulation.
type SimConfig struct {
	Name string // row name
	// Sched, when set, runs the server's own pass (scheduler/sched.Pass)
	// with this configuration at every scheduling point: fair order
	// across queues, quotas and borrowing, preemption, backfill, holds.
	// Nil runs FIFO with Policy.
	Sched *sched.Config
	// Policy scores nodes for FIFO (the shipped pass always uses Ark's).
	Policy placement.Policy
	// CheckpointEvery is the seconds between a task's checkpoints: an
	// evicted task restarts from its last one (default 1800).
	CheckpointEvery float64
	// PassInterval groups events into scheduling passes (default 1 s).
	PassInterval float64
}

// defaultCheckpoint is the seconds between checkpoints when unset.
const defaultCheckpoint = 1800

// Kinds of simulation events.
const (
	evArrive = iota
	evFinish
	evWake // a pass asked to run again then (a preemption hold ends)
)

type simEvent struct {
	at      float64
	kind    int
	task    int
	attempt int
}

type eventHeap []simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, k int) bool {
	if h[i].at != h[k].at {
		return h[i].at < h[k].at
	}
	if (h[i].kind == evFinish) != (h[k].kind == evFinish) {
		return h[i].kind == evFinish // departures first at the same instant
	}
	return h[i].task < h[k].task
}
func (h eventHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type taskState uint8

const (
	notArrived taskState = iota
	waiting
	running
	done
	neverFits
)

// simRun is a task's life in the simulation.
type simRun struct {
	state     taskState
	node      int
	gpus      []int
	start     float64 // of the current attempt
	remaining float64 // work left when the current attempt started
	attempt   int
	since     float64 // pending since
	wait      float64 // total time pending
	started   bool
	end       float64
}

type sim struct {
	cfg      SimConfig
	tasks    []SimTask
	run      []simRun
	nodes    []*placement.NodeState
	empty    []*placement.NodeState
	fitEmpty map[string]bool
	c        *placement.NodeIndex
	h        eventHeap
	now      float64
	pending  []int // waiting tasks by index (arrival order)
	evicted  []int // requeued in this pass
	capacity int64 // milli-GPU
	used     int64 // milli-GPU allocated
	// changed is set when capacity changed (a task started or stopped)
	// since the last pass; woken when a pass asked to run again.
	changed, woken bool
	// ark is the state the shipped pass reads (nil for FIFO).
	ark *arkState

	// idleWeight, idleMilli and strandedGPUs accumulate observeIdle's
	// figures, weighted by the GPU tasks waiting after each pass.
	idleWeight, idleMilli, strandedGPUs float64

	first, last, lastArrival, lastStart float64
	area, areaWin, lostGPUSec           float64
	res                                 OverTimeResult
}

// Simulate runs the tasks (in arrival order) through one scheduler on the
// nodes. Events are grouped into passes every PassInterval seconds: a
// task that arrives, or a GPU freed, at 99.3 s is seen by the pass at
// 100 s, for every scheduler alike. A pass first applies the departures
// and arrivals, then starts what it can:
//
//   - FIFO (no Sched): the waiting tasks in arrival order, each placed
//     by the policy where it fits; one that does not fit does not block
//     those behind it (as kube-scheduler's queue), and a shape that failed
//     is not retried in the pass. No preemption.
//   - Ark (Sched): the server's own pass, scheduler/sched.Pass, over a
//     View of the simulation's state (overtime_pass.go), its plan applied
//     as the FSM applies it.
func Simulate(nodes []Node, tasks []SimTask, cfg SimConfig) OverTimeResult {
	return simulate(nodes, tasks, cfg).res
}

func simulate(nodes []Node, tasks []SimTask, cfg SimConfig) *sim {
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = defaultCheckpoint
	}
	if cfg.PassInterval <= 0 {
		cfg.PassInterval = 1
	}
	states, _ := Cluster(nodes, nil)
	empty, _ := Cluster(nodes, nil)
	s := &sim{cfg: cfg, nodes: states, empty: empty, fitEmpty: map[string]bool{}, c: placement.NewNodeIndex(states)}
	s.tasks = append([]SimTask(nil), tasks...)
	sort.SliceStable(s.tasks, func(i, k int) bool { return s.tasks[i].Arrive < s.tasks[k].Arrive })
	s.run = make([]simRun, len(s.tasks))
	name := "ark"
	if cfg.Policy != nil {
		name = cfg.Policy.Name()
	}
	s.res = OverTimeResult{Scheduler: cfg.Name, Policy: name, Tasks: len(s.tasks)}
	for _, n := range states {
		s.capacity += int64(len(n.GPUFree)) * placement.MilliPerGPU
	}
	if cfg.Sched != nil {
		s.ark = newArkState(nodes, len(s.tasks))
	}
	if len(s.tasks) == 0 {
		return s
	}
	for i := range s.tasks {
		s.run[i].remaining = s.tasks[i].Duration
		heap.Push(&s.h, simEvent{at: s.tasks[i].Arrive, kind: evArrive, task: i})
	}
	s.first, s.last = s.tasks[0].Arrive, s.tasks[0].Arrive
	s.lastArrival = s.tasks[len(s.tasks)-1].Arrive
	obs, _ := cfg.Policy.(placement.Observer)
	for s.h.Len() > 0 {
		tick := math.Ceil(s.h[0].at/cfg.PassInterval) * cfg.PassInterval
		for s.h.Len() > 0 && s.h[0].at <= tick {
			ev := heap.Pop(&s.h).(simEvent)
			s.now = ev.at
			switch ev.kind {
			case evFinish:
				if r := &s.run[ev.task]; r.state == running && r.attempt == ev.attempt {
					s.finish(ev.task)
				}
				continue
			case evWake:
				s.woken = true
				continue
			}
			if !s.fits(s.tasks[ev.task].Task) {
				s.run[ev.task].state = neverFits
				s.res.NeverFit++
				continue
			}
			if obs != nil {
				obs.Observe(s.tasks[ev.task].Task)
			}
			s.run[ev.task].state, s.run[ev.task].since = waiting, ev.at
			s.pending = append(s.pending, ev.task)
			if s.ark != nil {
				s.ark.arrive(s, ev.task)
			}
		}
		s.now = tick
		if len(s.pending) == 0 {
			continue
		}
		if s.ark != nil {
			s.passShipped()
		} else {
			s.passFIFO()
		}
		s.compact()
		s.observeIdle()
	}
	s.finishResult()
	return s
}

// observeIdle adds, after a pass that left GPU tasks waiting, the GPU
// milli unallocated and the whole free GPUs on nodes where no waiting
// task that those GPUs could hold fits the node's free CPU and memory
// (see OverTimeResult.StrandedGPUs), each weighted by the tasks waiting:
// the means are what the average waiting task sees, so a long tail of
// passes with one large task waiting does not outweigh the backlog.
func (s *sim) observeIdle() {
	// The waiting GPU tasks' (CPU, memory) requests by whole GPUs asked
	// (a share asks one), each list reduced to the requests no other one
	// is smaller than in both: a node fits some waiting task's host
	// request iff it fits one of these.
	var front [9][][2]int64
	waitingGPU := 0
	for _, i := range s.pending {
		t := s.tasks[i].Task
		if s.run[i].state != waiting || t.GPUs == 0 {
			continue
		}
		waitingGPU++
		g := min(t.GPUs, len(front)-1)
		r := [2]int64{t.CPUMilli, t.Memory}
		if slices.ContainsFunc(front[g], func(f [2]int64) bool { return f[0] <= r[0] && f[1] <= r[1] }) {
			continue
		}
		front[g] = slices.DeleteFunc(front[g], func(f [2]int64) bool { return r[0] <= f[0] && r[1] <= f[1] })
		front[g] = append(front[g], r)
	}
	if waitingGPU == 0 {
		return
	}
	w := float64(waitingGPU)
	s.idleWeight += w
	s.idleMilli += w * float64(s.capacity-s.used)
	for _, n := range s.nodes {
		whole := n.FullyFree()
		if whole == 0 {
			continue
		}
		held, fits := false, false // some waiting task the GPUs could hold; one whose host request fits too
		for g := 1; g <= min(whole, len(front)-1) && !fits; g++ {
			held = held || len(front[g]) > 0
			fits = slices.ContainsFunc(front[g], func(f [2]int64) bool { return f[0] <= n.CPUFree && f[1] <= n.MemFree })
		}
		if held && !fits {
			s.strandedGPUs += w * float64(whole)
		}
	}
}

// fits says whether t fits some node of the empty cluster (cached by
// shape): a task that does not is never queued.
func (s *sim) fits(t placement.Task) bool {
	k := shapeKey(t)
	ok, seen := s.fitEmpty[k]
	if !seen {
		for _, n := range s.empty {
			if n.Check(t) == placement.RuleNone {
				ok = true
				break
			}
		}
		s.fitEmpty[k] = ok
	}
	return ok
}

// advance accounts the allocated GPU time up to t.
func (s *sim) advance(t float64) {
	if t <= s.last {
		return
	}
	u := float64(s.used)
	s.area += u * (t - s.last)
	if s.last < s.lastArrival {
		s.areaWin += u * (min(t, s.lastArrival) - s.last)
	}
	s.last = t
}

func (s *sim) start(i, node int, gpus []int) {
	s.advance(s.now)
	st, r := &s.tasks[i], &s.run[i]
	s.c.Take(node, st.Task, gpus)
	r.state, r.node, r.gpus, r.start = running, node, gpus, s.now
	r.attempt++
	r.wait += s.now - r.since
	if !r.started {
		r.started = true
		s.res.Placed++
	}
	s.used += st.Task.TotalMilli()
	s.lastStart = s.now
	s.changed = true
	heap.Push(&s.h, simEvent{at: s.now + r.remaining, kind: evFinish, task: i, attempt: r.attempt})
}

// stop takes a running task off its node.
func (s *sim) stop(i int) {
	s.advance(s.now)
	st, r := &s.tasks[i], &s.run[i]
	s.c.Release(r.node, st.Task, r.gpus)
	s.used -= st.Task.TotalMilli()
	s.changed = true
	if s.ark != nil {
		s.ark.stop(i)
	}
}

func (s *sim) finish(i int) {
	s.stop(i)
	r := &s.run[i]
	r.state, r.end, r.remaining = done, s.now, 0
	s.res.Completed++
	if s.ark != nil {
		s.ark.jobs[i].Status = api.JobSucceeded
	}
}

// evict preempts a running task: it keeps the work up to its last
// checkpoint (one every CheckpointEvery seconds of this attempt), loses
// the rest, and waits again in its original place in arrival order.
func (s *sim) evict(i int) {
	s.stop(i)
	r := &s.run[i]
	ran := s.now - r.start
	saved := math.Floor(ran/s.cfg.CheckpointEvery) * s.cfg.CheckpointEvery
	s.lostGPUSec += (ran - saved) * float64(s.tasks[i].Task.TotalMilli()) / placement.MilliPerGPU
	r.remaining -= saved
	r.state, r.since = waiting, s.now
	s.evicted = append(s.evicted, i)
	s.res.Preemptions++
}

// compact drops started tasks from the pending list and puts evicted ones
// back in arrival order.
func (s *sim) compact() {
	if len(s.evicted) > 0 {
		s.pending = append(s.pending, s.evicted...)
		s.evicted = s.evicted[:0]
		sort.Ints(s.pending)
	}
	kept := s.pending[:0]
	for _, i := range s.pending {
		if s.run[i].state == waiting {
			kept = append(kept, i)
		}
	}
	s.pending = kept
}

func (s *sim) passFIFO() {
	failed := map[string]bool{}
	for _, i := range s.pending {
		t := s.tasks[i].Task
		key := shapeKey(t)
		if failed[key] {
			continue
		}
		n, gpus := s.c.Select(t, s.cfg.Policy, nil)
		if n < 0 {
			failed[key] = true
			continue
		}
		s.start(i, n, gpus)
	}
}

// SizeClasses name the size classes waits are reported by: a share of
// one GPU, one whole GPU, 2 GPUs or more (openb's tasks are all single
// pods: no multi-node gangs), and tasks that ask for no GPU.
var SizeClasses = []string{"share", "1gpu", "multi_gpu", "cpu"}

// sizeClass is t's size class.
func sizeClass(t placement.Task) string {
	switch {
	case t.GPUs == 0:
		return "cpu"
	case t.Shared():
		return "share"
	case t.GPUs == 1:
		return "1gpu"
	}
	return "multi_gpu"
}

func (s *sim) finishResult() {
	res := &s.res
	end := s.first
	var all []float64
	byPrio := map[int][]float64{}
	bySize := map[string][]float64{}
	byQueue := map[string][]float64{}
	for i, r := range s.run {
		if r.state != done {
			continue
		}
		end = max(end, r.end)
		all = append(all, r.wait)
		st := &s.tasks[i]
		byPrio[st.Priority] = append(byPrio[st.Priority], r.wait)
		bySize[sizeClass(st.Task)] = append(bySize[sizeClass(st.Task)], r.wait)
		if st.Queue != "" {
			byQueue[st.Queue] = append(byQueue[st.Queue], r.wait)
		}
	}
	overall := waitStats("all", all)
	res.MeanWaitSec, res.P95WaitSec = overall.MeanWaitSec, overall.P95WaitSec
	res.MakespanSec = end - s.first
	res.LastStartSec = max(s.lastStart-s.first, 0)
	capMilli := float64(s.capacity)
	if res.MakespanSec > 0 && capMilli > 0 {
		res.UtilMakespanPct = 100 * s.area / (capMilli * res.MakespanSec)
	}
	if w := s.lastArrival - s.first; w > 0 && capMilli > 0 {
		res.UtilPct = 100 * s.areaWin / (capMilli * w)
	}
	res.LostGPUHours = s.lostGPUSec / 3600
	if s.idleWeight > 0 {
		res.IdleGPUs = s.idleMilli / placement.MilliPerGPU / s.idleWeight
		res.StrandedGPUs = s.strandedGPUs / s.idleWeight
	}
	for _, p := range []int{PrioHigh, PrioNormal, PrioLow} {
		res.ByPriority = append(res.ByPriority, waitStats(ClassName(p), byPrio[p]))
	}
	for _, c := range SizeClasses {
		res.BySize = append(res.BySize, waitStats(c, bySize[c]))
	}
	names := make([]string, 0, len(byQueue))
	for q := range byQueue {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		res.ByQueue = append(res.ByQueue, waitStats(q, byQueue[q]))
	}
}

// waitStats is the mean and p95 (nearest rank below) of waits.
func waitStats(name string, waits []float64) WaitStats {
	w := WaitStats{Name: name, Tasks: len(waits)}
	if len(waits) == 0 {
		return w
	}
	var sum float64
	for _, x := range waits {
		sum += x
	}
	w.MeanWaitSec = sum / float64(len(waits))
	sorted := append([]float64(nil), waits...)
	sort.Float64s(sorted)
	w.P95WaitSec = sorted[int(float64(len(sorted)-1)*0.95)]
	return w
}

func shapeKey(t placement.Task) string {
	return strconv.FormatInt(t.CPUMilli, 10) + "," + strconv.FormatInt(t.Memory, 10) + "," + strconv.Itoa(t.GPUs) + "," +
		strconv.FormatInt(t.GPUMilli, 10) + "," + strings.Join(t.Models, "|")
}
