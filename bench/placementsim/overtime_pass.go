package placementsim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/spec"
)

// The over-time simulation's Ark runs the server's own pass
// (scheduler/sched.Pass) over the simulation's state, seen through a
// sched.View (arkView), and applies each plan as the FSM applies it
// (scheduler/state applyPlan): placed jobs start on the GPUs the plan
// chose; each preemption requeues its victims whole (they restart from
// their last checkpoint) and the preemptor keeps the nodes they free
// (Job.Preempting, HeldNodes, HoldUntil) until it is placed or the hold
// runs out. Agents are instant: a placed task runs at once, an evicted
// one stops at once.
//
// Passes run when the server's loop would: at every scheduling point with
// waiting work, over every pending job when capacity changed since the
// last pass (a task started or stopped) or a hold ran out (Output.Wake),
// else only over the jobs submitted since (Input.NewerThan), with the
// last full pass's held jobs (Input.Held). A pass that preempts is
// followed at once by another, as the victims' stop is a state change:
// that one places the preemptor on the nodes held for it.

// epoch is the simulation's time 0 on the pass's clock.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is simulation seconds on the pass's clock.
func clock(sec float64) time.Time { return epoch.Add(time.Duration(sec * float64(time.Second))) }

// maxRounds bounds the passes at one scheduling point (each after the
// last one's plan changed the allocations).
const maxRounds = 8

// arkState is what the shipped pass reads: the cluster's nodes, a job
// per arrived task and the allocation of each running task.
type arkState struct {
	nodes   []*api.Node
	nodeIdx map[string]int // by node ID: the simulation's node index
	jobs    []*api.Job     // by task index; nil until it arrives
	alloc   []*api.Allocation
	live    []int // running tasks, in start order
	livePos map[int]int
	held    []string // Output.Held of the last full pass
	seen    uint64   // the newest job index the last pass saw
	arrived uint64   // the newest job index submitted
	wake    float64  // the earliest pending evWake, +Inf when none
	rng     *rand.Rand
	// reserved are the jobs a pass held nodes for (Result.Reserved).
	reserved map[string]bool
	// views carries the pass's node views from one pass to the next, as
	// the server's loop does (nodes are never changed in place here).
	views *placement.ViewCache
}

func newArkState(nodes []Node, tasks int) *arkState {
	a := &arkState{nodeIdx: map[string]int{}, jobs: make([]*api.Job, tasks), alloc: make([]*api.Allocation, tasks),
		livePos: map[int]int{}, wake: math.Inf(1), rng: rand.New(rand.NewPCG(42, 17)), reserved: map[string]bool{},
		views: &placement.ViewCache{}}
	for i, n := range nodes {
		an := &api.Node{ID: n.Name, Name: n.Name, Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			Status: api.NodeReady, CPUMilli: n.CPUMilli, MemoryBytes: n.MemoryMiB << 20, RegisterTime: epoch}
		for g := range n.GPUs {
			// openb gives no GPU memory; tasks ask none, and a share holds
			// its proportion of whatever the GPU has.
			an.GPUs = append(an.GPUs, api.GPU{Index: g, UUID: fmt.Sprintf("GPU-%s-%d", n.Name, g), Model: n.Model, MemoryBytes: 32 << 30})
		}
		a.nodes = append(a.nodes, an)
		a.nodeIdx[an.ID] = i
	}
	return a
}

// jobOf is the job a task submits: one replica of its shape, in its queue
// at its priority, declaring maxRuntime as its duration times its
// over-estimate. The job's index (CreateIndex) is its arrival order.
func jobOf(i int, st *SimTask, at float64) *api.Job {
	t := st.Task
	res := spec.Resources{GPUs: t.GPUs, CPU: spec.Quantity(strconv.FormatInt(t.CPUMilli, 10) + "m"),
		Memory: spec.Quantity(strconv.FormatInt(t.Memory, 10) + "Mi")}
	if t.Shared() {
		res.GPUs, res.GPUMilli = 1, int(t.GPUMilli)
	}
	for k, m := range t.Models {
		if k > 0 {
			res.GPUModel += ","
		}
		res.GPUModel += m
	}
	id := strconv.Itoa(i)
	s := spec.Job{Name: st.Name, Namespace: "sim", Queue: st.Queue, Kind: spec.KindBatch, Priority: st.Priority, Replicas: 1,
		Resources: res, MaxRuntime: spec.Duration(time.Duration(st.Duration * max(st.Overestimate, 1) * float64(time.Second))),
		Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
	return &api.Job{ID: id, Name: st.Name, Namespace: "sim", Queue: st.Queue, Kind: spec.KindBatch, Priority: st.Priority,
		Status: api.JobPending, Spec: s, SubmitTime: clock(at), CreateIndex: uint64(i) + 1}
}

func (a *arkState) arrive(s *sim, i int) {
	a.jobs[i] = jobOf(i, &s.tasks[i], s.now)
	a.arrived = max(a.arrived, uint64(i)+1)
}

// stop takes task i's allocation out of the live set.
func (a *arkState) stop(i int) {
	k, ok := a.livePos[i]
	if !ok {
		return
	}
	last := len(a.live) - 1
	a.live[k] = a.live[last]
	a.livePos[a.live[k]] = k
	a.live = a.live[:last]
	delete(a.livePos, i)
	a.alloc[i] = nil
}

// arkView is the sched.View of the simulation at its current time.
type arkView struct{ s *sim }

func (v arkView) Nodes() []*api.Node { return v.s.ark.nodes }

// LiveAllocs returns the running tasks' allocations, each with the
// checkpoint the simulation's model says it last wrote (one every
// CheckpointEvery seconds of its attempt): preemption reads the work a
// victim would lose from it.
func (v arkView) LiveAllocs() []*api.Allocation {
	s := v.s
	out := make([]*api.Allocation, 0, len(s.ark.live))
	for _, i := range s.ark.live {
		a, r := s.ark.alloc[i], &s.run[i]
		if saved := math.Floor((s.now-r.start)/s.cfg.CheckpointEvery) * s.cfg.CheckpointEvery; saved > 0 {
			at := clock(r.start + saved)
			if a.LastCheckpoint == nil || !a.LastCheckpoint.Time.Equal(at) {
				a.LastCheckpoint = &api.CheckpointRef{URI: a.CheckpointURI, Time: at}
			}
		}
		out = append(out, a)
	}
	return out
}

func (v arkView) Job(id string) *api.Job {
	i, err := strconv.Atoi(id)
	if err != nil || i < 0 || i >= len(v.s.ark.jobs) {
		return nil
	}
	return v.s.ark.jobs[i]
}

// Pending returns the waiting jobs created after index since, by
// priority then age (the store's order).
func (v arkView) Pending(since uint64) []*api.Job {
	var out []*api.Job
	v.waiting(func(j *api.Job) {
		if j.CreateIndex > since {
			out = append(out, j)
		}
	})
	sortByPriority(out)
	return out
}

func (v arkView) Holding() []*api.Job {
	var out []*api.Job
	v.waiting(func(j *api.Job) {
		if len(j.HeldNodes) > 0 {
			out = append(out, j)
		}
	})
	sortByPriority(out)
	return out
}

// waiting calls f with the job of every waiting task (passShipped
// compacts the list after each plan).
func (v arkView) waiting(f func(*api.Job)) {
	s := v.s
	for _, i := range s.pending {
		if s.run[i].state == waiting {
			f(s.ark.jobs[i])
		}
	}
}

func sortByPriority(jobs []*api.Job) {
	sort.SliceStable(jobs, func(i, k int) bool {
		if jobs[i].Priority != jobs[k].Priority {
			return jobs[i].Priority > jobs[k].Priority
		}
		return jobs[i].CreateIndex < jobs[k].CreateIndex
	})
}

// passShipped runs the server's pass at this scheduling point and applies
// its plans (see the comment at the top of this file).
func (s *sim) passShipped() {
	a := s.ark
	for round := 0; round < maxRounds; round++ {
		newer := a.seen
		if s.changed || s.woken || round > 0 {
			newer = 0
		}
		s.changed, s.woken = false, false
		a.seen = a.arrived
		t0 := time.Now()
		out := sched.Pass(arkView{s}, *s.cfg.Sched, sched.Input{Now: clock(s.now), NewerThan: newer, Held: a.held, Rand: a.rng, Views: a.views})
		s.res.PassSeconds += time.Since(t0).Seconds()
		s.res.Passes++
		if out.HeldSet {
			a.held = out.Held
		}
		for _, id := range out.Held {
			a.reserved[id] = true
		}
		s.res.Reserved = len(a.reserved)
		if !out.Wake.IsZero() {
			s.wakeAt(out.Wake.Sub(epoch).Seconds())
		}
		// The leader's re-check before the commit: on the state the plan
		// was made on it must keep every placement.
		plan, rejected := sched.Verify(arkView{s}, out.Plan)
		s.res.PlanRejected += len(rejected)
		out.Plan = plan
		changed := s.applyPlan(out)
		// Started tasks leave the waiting list, evicted ones join it once.
		s.compact()
		if !changed {
			return
		}
		if round == maxRounds-1 {
			s.res.RoundsCut++
		}
	}
}

// wakeAt schedules a pass at t (a hold or backoff ends then).
func (s *sim) wakeAt(t float64) {
	if t <= s.now || (s.ark.wake > s.now && s.ark.wake <= t) {
		return // one is due no later
	}
	s.ark.wake = t
	heap.Push(&s.h, simEvent{at: t, kind: evWake})
}

// applyPlan applies a pass's plan as the FSM does: placements, pending
// reasons, then preemptions (each only if its preemptor is still pending
// and its victims still run). It reports whether any task started or
// stopped.
func (s *sim) applyPlan(out sched.Output) (changed bool) {
	a := s.ark
	// A job placed ahead of an older one the pass held nodes for was
	// backfilled past it.
	oldestHeld := uint64(math.MaxUint64)
	for _, id := range out.Held {
		_, j := s.jobIndex(id)
		oldestHeld = min(oldestHeld, j.CreateIndex)
	}
	for _, p := range out.Plan.Placements {
		i, j := s.jobIndex(p.JobID)
		if len(p.Allocs) != 1 || j.Status != api.JobPending {
			panic(fmt.Sprintf("placementsim: plan places job %s (%s) with %d allocations; the simulation runs one-replica pending jobs", p.JobID, j.Status, len(p.Allocs)))
		}
		al := *p.Allocs[0]
		node, ok := a.nodeIdx[al.NodeID]
		if !ok {
			panic(fmt.Sprintf("placementsim: plan places job %s on unknown node %s", p.JobID, al.NodeID))
		}
		now := clock(s.now)
		al.Status, al.DesiredStatus, al.StartTime = api.AllocRunning, api.DesiredRun, &now
		j.Status, j.Reason = api.JobRunning, ""
		j.Preempting, j.HeldNodes, j.HoldUntil = nil, nil, nil
		j.StartTime = &now
		if j.CreateIndex > oldestHeld {
			s.res.Backfilled++
		}
		s.start(i, node, slices.Clone(al.GPUs))
		a.alloc[i] = &al
		a.livePos[i] = len(a.live)
		a.live = append(a.live, i)
		changed = true
	}
	for _, pr := range out.Plan.Pending {
		if _, j := s.jobIndex(pr.JobID); j.Status == api.JobPending {
			j.Reason = pr.Reason
		}
	}
	for _, pr := range out.Plan.Preemptions {
		_, j := s.jobIndex(pr.JobID)
		if j.Status != api.JobPending || !s.victimsRun(pr.Victims) {
			continue // the FSM's checkPreemption would refuse it
		}
		for _, id := range pr.Victims {
			v, vj := s.jobIndex(id)
			vj.Preemptions++
			vj.LastPreemption = fmt.Sprintf("preempted by job %s (priority %d over %d)", j.ID, j.Priority, vj.Priority)
			vj.RestartCount++
			vj.Status, vj.Reason, vj.Preempting, vj.RestartAfter = api.JobPending, vj.LastPreemption, nil, nil
			s.evict(v)
		}
		j.Preempting = appendNew(j.Preempting, pr.Victims...)
		j.HeldNodes, j.HoldUntil = nil, nil
		if len(pr.Nodes) > 0 && !pr.HoldUntil.IsZero() {
			until := pr.HoldUntil
			j.HeldNodes, j.HoldUntil = slices.Clone(pr.Nodes), &until
		}
		changed = true
	}
	return changed
}

// victimsRun says whether every victim is a running job.
func (s *sim) victimsRun(ids []string) bool {
	for _, id := range ids {
		if _, j := s.jobIndex(id); j == nil || j.Status != api.JobRunning {
			return false
		}
	}
	return true
}

// jobIndex returns the task index and job of a job ID the pass returned.
func (s *sim) jobIndex(id string) (int, *api.Job) {
	i, err := strconv.Atoi(id)
	if err != nil || i < 0 || i >= len(s.ark.jobs) || s.ark.jobs[i] == nil {
		panic(fmt.Sprintf("placementsim: the pass returned job %q, which the simulation never submitted", id))
	}
	return i, s.ark.jobs[i]
}

// appendNew appends the ids list does not hold yet (a fresh slice).
func appendNew(list []string, ids ...string) []string {
	out := slices.Clone(list)
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// schedConfig is the server's scheduler configuration for the
// simulation's queues: preemption and backfill on, the default
// reservations and preemption hold, and the protection window.
func schedConfig(queues []placement.Queue, minRuntime float64) sched.Config {
	cfg := sched.Config{Queues: map[string]placement.Queue{}, PreemptMinRuntime: time.Duration(minRuntime * float64(time.Second)),
		CheckpointStore: "file:///sim/checkpoints"}
	for _, q := range queues {
		cfg.Queues[q.Name] = q
	}
	return cfg
}
