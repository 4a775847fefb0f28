package state

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

var modelSeed = flag.Uint64("model.seed", 0, "run TestFSMModel with this seed only (0: the fixed seeds)")

// TestFSMModel drives the FSM, through ApplyEntry as Raft does, with random
// command sequences (plans with gangs and GPU shares, stale plans,
// preemptions, node loss and return, re-registration, drains, agents'
// reports, cancels, migrations, GC, snapshot and restore) and checks after
// every step that it agrees with an independent model (model_test.go) and
// that no GPU is over-committed and every gang is whole or absent.
// Reproduce a failure with -model.seed=N.
func TestFSMModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 42, 1234, 98765, 20261204}
	if *modelSeed != 0 {
		seeds = []uint64{*modelSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			r := newModelRun(t, seed)
			for step := 0; step < 400; step++ {
				r.step()
				if t.Failed() {
					return
				}
			}
			t.Logf("seed %d: %d placed, %d preempted, %d restored, %d jobs, %d allocations at the end",
				seed, r.placed, r.preempted, r.restores, len(r.m.jobs), len(r.m.allocs))
		})
	}
}

// modelRun is one seeded sequence.
type modelRun struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	h     *harness
	m     *model
	now   time.Time
	trail []string // the last commands, for the failure message
	plans []ApplyPlanRequest
	ids   int
	names []string

	placed, preempted, restores int
}

func newModelRun(t *testing.T, seed uint64) *modelRun {
	r := &modelRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), h: newHarness(t), m: newModel(), now: t0}
	for i, gpuMem := range []int64{141 * gi, 141 * gi, 80 * gi} {
		name := fmt.Sprintf("n%d", i+1)
		r.names = append(r.names, name)
		r.registerNode("id-"+name, name, 4, gpuMem)
	}
	return r
}

func (r *modelRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d (rerun with -run 'TestFSMModel/%d' or -model.seed=%d), after:\n  %s\n%s",
		r.seed, r.seed, r.seed, strings.Join(r.trail, "\n  "), fmt.Sprintf(format, args...))
}

func (r *modelRun) note(format string, args ...any) {
	r.trail = append(r.trail, fmt.Sprintf("%d: ", r.h.index+1)+fmt.Sprintf(format, args...))
	if len(r.trail) > 25 {
		r.trail = r.trail[1:]
	}
}

// apply sends one command to the FSM and says whether it was refused.
func (r *modelRun) apply(typ MessageType, req any) (any, bool) {
	r.t.Helper()
	resp := r.h.apply(typ, req)
	if ue, isErr := resp.(*UndecodableEntryError); isErr {
		r.fail("%s: %v", typ, ue)
	}
	_, refused := resp.(error)
	return resp, refused
}

// expect checks the FSM refused a command exactly when the model did.
func (r *modelRun) expect(typ MessageType, req any, refused bool) any {
	r.t.Helper()
	resp, got := r.apply(typ, req)
	if got != refused {
		r.fail("%s answered %v; the model says refused=%v", typ, resp, refused)
	}
	return resp
}

func (r *modelRun) newID(prefix string) string {
	r.ids++
	return fmt.Sprintf("%s%d", prefix, r.ids)
}

func (r *modelRun) registerNode(id, name string, gpus int, gpuMem int64) {
	nd := testNode(name, gpus)
	nd.ID = id
	mem := make([]int64, gpus)
	for i := range nd.GPUs {
		nd.GPUs[i].MemoryBytes, mem[i] = gpuMem, gpuMem
	}
	r.note("register node %s as %s", name, id)
	r.expect(UpsertNodeType, UpsertNodeRequest{Node: nd}, r.m.register(id, name, mem))
}

// step applies one random command and checks the result.
func (r *modelRun) step() {
	r.t.Helper()
	r.now = r.now.Add(time.Second)
	switch w := r.rng.IntN(100); {
	case w < 14:
		r.submit()
	case w < 38:
		r.freshPlan()
	case w < 45:
		r.stalePlan()
	case w < 50:
		r.preempt()
	case w < 72:
		r.report()
	case w < 76:
		r.nodeDownUp()
	case w < 79:
		r.reregister()
	case w < 82:
		r.eligibility()
	case w < 86:
		r.cancel()
	case w < 89:
		r.migrate()
	case w < 97:
		r.gc()
	default:
		r.snapshotRestore()
	}
	r.check()
}

func (r *modelRun) submit() {
	id := r.newID("j")
	replicas := 1 + r.rng.IntN(3)
	j := testJob(id, replicas, 1+r.rng.IntN(2))
	mj := &mJob{id: id, replicas: replicas, gpus: j.Spec.Resources.GPUs, status: api.JobPending}
	if r.rng.IntN(2) == 0 {
		mj.gpus, mj.milli = 1, []int64{100, 250, 300, 500, 600}[r.rng.IntN(5)]
		j.Spec.Resources.GPUs = 1
		j.Spec.Resources.GPUMilli = int(mj.milli)
		if r.rng.IntN(2) == 0 {
			gib := []int64{10, 40, 90}[r.rng.IntN(3)]
			j.Spec.Resources.GPUMemory = spec.Quantity(fmt.Sprintf("%dGi", gib))
			mj.memAsk = gib * gi
		}
	}
	mj.priority = []int{10, 50, 90}[r.rng.IntN(3)]
	mj.maxRestarts = r.rng.IntN(3)
	j.Priority, j.Spec.Priority = mj.priority, mj.priority
	j.Spec.Restart.MaxRestarts = mj.maxRestarts
	r.m.jobs[id] = mj
	r.note("submit %s: %d x (%d GPUs, %dm, %d bytes) priority %d", id, replicas, mj.gpus, mj.milli, mj.memAsk, mj.priority)
	r.expect(RegisterJobType, RegisterJobRequest{Job: j}, false)
}

// jobsWith returns the model's jobs with a status ("" for any), by ID.
func (r *modelRun) jobsWith(status string) []*mJob {
	var out []*mJob
	for _, id := range slices.Sorted(maps.Keys(r.m.jobs)) {
		if j := r.m.jobs[id]; status == "" || j.status == status {
			out = append(out, j)
		}
	}
	return out
}

func pick[T any](rng *rand.Rand, xs []T) (T, bool) {
	var zero T
	if len(xs) == 0 {
		return zero, false
	}
	return xs[rng.IntN(len(xs))], true
}

// freshPlan places up to three jobs, mostly pending ones, where the model
// sees room (or, now and then, anywhere), as a scheduler working from the
// current state would; two placements of one plan may still collide.
func (r *modelRun) freshPlan() {
	var req ApplyPlanRequest
	for range 1 + r.rng.IntN(3) {
		status := api.JobPending
		if r.rng.IntN(8) == 0 {
			status = ""
		}
		j, ok := pick(r.rng, r.jobsWith(status))
		if !ok {
			break
		}
		req.Plan.Placements = append(req.Plan.Placements, r.placementFor(j))
	}
	if len(req.Plan.Placements) == 0 {
		return
	}
	r.commitPlan(req, "plan")
	r.plans = append(r.plans, req)
}

// placementFor builds a placement of every rank of j.
func (r *modelRun) placementFor(j *mJob) JobPlacement {
	p := JobPlacement{JobID: j.id}
	h := r.m.holdings()
	nodes := slices.Sorted(maps.Keys(r.m.nodes))
	for rank := range j.replicas {
		nodeID, gpus := r.chooseGPUs(h, nodes, j)
		a := &api.Allocation{ID: r.newID("a"), JobID: j.id, NodeID: nodeID, Rank: rank, WorldSize: j.replicas,
			Attempt: j.attempt, GPUs: gpus, GPUMilli: j.milli, CPUMilli: 1000, MemoryBytes: gi,
			Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
		if n := r.m.nodes[nodeID]; n != nil && len(gpus) == 1 && gpus[0] < len(n.gpuMem) {
			a.GPUMemoryBytes = j.shareMem(n.gpuMem[gpus[0]])
		}
		if r.rng.IntN(40) == 0 {
			a.GPUMemoryBytes += gi // a share that asks other memory than the job
		}
		for _, g := range gpus {
			k := gpuKey{nodeID, g}
			if j.milli > 0 {
				h[k] = append(h[k], holding{alloc: a.ID, milli: j.milli, mem: a.GPUMemoryBytes})
			} else {
				h[k] = append(h[k], holding{alloc: a.ID, milli: 1000})
			}
		}
		p.Allocs = append(p.Allocs, a)
	}
	return p
}

// chooseGPUs picks a node and GPUs for one rank: usually ones the model
// sees free enough, on a ready, eligible node; sometimes any.
func (r *modelRun) chooseGPUs(h map[gpuKey][]holding, nodes []string, j *mJob) (string, []int) {
	if r.rng.IntN(6) > 0 {
		for _, i := range r.rng.Perm(len(nodes)) {
			n := r.m.nodes[nodes[i]]
			if !n.ready || !n.eligible {
				continue
			}
			var gpus []int
			for _, g := range r.rng.Perm(len(n.gpuMem)) {
				milli, mem := r.m.used(h, gpuKey{n.id, g})
				fits := milli == 0
				if j.milli > 0 {
					fits = milli+j.milli <= 1000 && mem+j.shareMem(n.gpuMem[g]) <= n.gpuMem[g]
				}
				if fits && len(gpus) < j.gpus {
					gpus = append(gpus, g)
				}
			}
			if len(gpus) == j.gpus {
				slices.Sort(gpus)
				return n.id, gpus
			}
		}
	}
	nodeID := nodes[r.rng.IntN(len(nodes))]
	gpus := []int{r.rng.IntN(4)}
	if j.gpus == 2 {
		gpus = append(gpus, (gpus[0]+1+r.rng.IntN(3))%4)
	}
	return nodeID, gpus
}

// commitPlan applies a plan and checks which placements and preemptions
// committed against the model.
func (r *modelRun) commitPlan(req ApplyPlanRequest, what string) {
	req.Time = r.now
	var desc []string
	for _, p := range req.Plan.Placements {
		var ranks []string
		for _, a := range p.Allocs {
			ranks = append(ranks, fmt.Sprintf("%s@%s%v/attempt %d", a.ID, a.NodeID, a.GPUs, a.Attempt))
		}
		desc = append(desc, p.JobID+"["+strings.Join(ranks, " ")+"]")
	}
	for _, pr := range req.Plan.Preemptions {
		desc = append(desc, fmt.Sprintf("%s preempts %v (reclaim %v)", pr.JobID, pr.Victims, pr.Reclaim))
	}
	r.note("%s %s", what, strings.Join(desc, ", "))
	placed, preempted := r.m.plan(req)
	resp, _ := r.apply(ApplyPlanType, req)
	pr, ok := resp.(*ApplyPlanResponse)
	if !ok {
		r.fail("ApplyPlan answered %T %v", resp, resp)
	}
	if !slices.Equal(pr.Placed, placed) {
		r.fail("placed %v (rejected %v); the model places %v", pr.Placed, pr.Rejected, placed)
	}
	if got := slices.Sorted(maps.Keys(pr.Preempted)); !slices.Equal(got, slices.Sorted(slices.Values(preempted))) {
		r.fail("preempted for %v (rejected %v); the model preempts for %v", got, pr.Rejected, preempted)
	}
	r.placed += len(placed)
	r.preempted += len(preempted)
}

// stalePlan commits again a plan made earlier, against an older state:
// its jobs may have been placed, restarted, cancelled or collected, its
// GPUs taken. Half the time its allocations get new IDs (a plan made
// again from the same old snapshot).
func (r *modelRun) stalePlan() {
	old, ok := pick(r.rng, r.plans)
	if !ok {
		return
	}
	var req ApplyPlanRequest
	fresh := r.rng.IntN(2) == 0
	for _, p := range old.Plan.Placements {
		np := JobPlacement{JobID: p.JobID}
		for _, a := range p.Allocs {
			na := *a
			if fresh {
				na.ID = r.newID("a")
			}
			np.Allocs = append(np.Allocs, &na)
		}
		req.Plan.Placements = append(req.Plan.Placements, np)
	}
	r.commitPlan(req, "stale plan")
}

// preempt asks for a pending job to evict one or two running ones, of
// any priority (the FSM must refuse the ones not below it).
func (r *modelRun) preempt() {
	j, ok := pick(r.rng, r.jobsWith(api.JobPending))
	running := r.jobsWith(api.JobRunning)
	if !ok || len(running) == 0 {
		return
	}
	pr := Preemption{JobID: j.id, Reclaim: r.rng.IntN(5) == 0}
	for range 1 + r.rng.IntN(2) {
		v, _ := pick(r.rng, running)
		if !slices.Contains(pr.Victims, v.id) {
			pr.Victims = append(pr.Victims, v.id)
		}
	}
	req := ApplyPlanRequest{Plan: Plan{Preemptions: []Preemption{pr}}}
	if r.rng.IntN(3) == 0 {
		// The job is placed and preempts in one plan: the placement
		// goes first, so the preemption finds it running.
		req.Plan.Placements = []JobPlacement{r.placementFor(j)}
	}
	r.commitPlan(req, "preempt")
}

// report sends an agent's status for an allocation (now and then one that
// does not exist or a status agents may not send).
func (r *modelRun) report() {
	ids := slices.Sorted(maps.Keys(r.m.allocs))
	id, ok := pick(r.rng, ids)
	if !ok || r.rng.IntN(30) == 0 {
		id = "no-such-alloc"
	}
	// Live allocations get most of the reports.
	if a := r.m.allocs[id]; a != nil && a.terminal() && r.rng.IntN(3) > 0 {
		for _, other := range ids {
			if !r.m.allocs[other].terminal() {
				id = other
				break
			}
		}
	}
	status := []string{api.AllocRunning, api.AllocRunning, api.AllocSucceeded, api.AllocSucceeded, api.AllocFailed, api.AllocPending, api.AllocLost}[r.rng.IntN(7)]
	if a := r.m.allocs[id]; a != nil && a.stop && r.rng.IntN(2) == 0 {
		status = api.AllocFailed // asked to stop, it stopped
	}
	r.note("report %s %s", id, status)
	refused := r.m.allocStatus(id, status, r.now)
	r.expect(AllocStatusType, AllocStatusRequest{AllocID: id, Update: api.AllocStatusUpdate{Status: status}, Time: r.now}, refused)
}

func (r *modelRun) nodeDownUp() {
	id, _ := pick(r.rng, slices.Sorted(maps.Keys(r.m.nodes)))
	status := api.NodeDown
	if !r.m.nodes[id].ready && r.rng.IntN(3) > 0 {
		status = api.NodeReady
	}
	r.note("node %s %s", id, status)
	r.expect(NodeStatusType, NodeStatusRequest{NodeID: id, Status: status, Info: "missed heartbeats", Time: r.now}, r.m.nodeStatus(id, status, r.now))
}

// reregister has an agent register again: under its ID (an agent restart),
// or, for a node that is down, as a new incarnation under the same name.
func (r *modelRun) reregister() {
	name, _ := pick(r.rng, r.names)
	var cur *mNode
	for _, n := range r.m.nodes {
		if n.name == name {
			cur = n
		}
	}
	id := cur.id
	if !cur.ready && r.rng.IntN(2) == 0 {
		id = r.newID("id-" + name + "-")
	}
	r.registerNode(id, name, len(cur.gpuMem), cur.gpuMem[0])
}

// eligibility closes or opens a node, or starts, cancels or completes a
// drain.
func (r *modelRun) eligibility() {
	id, _ := pick(r.rng, slices.Sorted(maps.Keys(r.m.nodes)))
	n := r.m.nodes[id]
	switch r.rng.IntN(4) {
	case 0, 1:
		eligible := r.rng.IntN(2) == 0
		refused := eligible && n.draining
		if !refused {
			n.eligible = eligible
		}
		r.note("node %s eligible=%v", id, eligible)
		r.expect(NodeEligibilityType, NodeEligibilityRequest{NodeID: id, Eligible: eligible}, refused)
	case 2:
		n.draining, n.eligible = true, false
		r.note("node %s drain", id)
		r.expect(NodeDrainType, NodeDrainRequest{NodeID: id, Drain: &api.DrainStrategy{Deadline: r.now.Add(time.Hour)}}, false)
	default:
		complete := r.rng.IntN(2) == 0
		n.draining = false
		r.note("node %s drain ends (complete %v)", id, complete)
		r.expect(NodeDrainType, NodeDrainRequest{NodeID: id, Complete: complete}, false)
	}
}

func (r *modelRun) cancel() {
	j, ok := pick(r.rng, r.jobsWith(""))
	id := "no-such-job"
	if ok {
		id = j.id
	}
	r.note("cancel %s", id)
	refused := r.m.cancel(id)
	if !refused {
		r.m.jobs[id].endAt = r.now
	}
	r.expect(CancelJobType, CancelJobRequest{JobID: id, Reason: "test", Time: r.now}, refused)
}

func (r *modelRun) migrate() {
	var ids []string
	for _, j := range r.jobsWith("") {
		if r.rng.IntN(4) == 0 {
			ids = append(ids, j.id)
		}
	}
	r.note("migrate %v", ids)
	r.m.migrate(ids)
	r.expect(MigrateJobsType, MigrateJobsRequest{JobIDs: ids, Reason: "drain", Time: r.now}, false)
}

func (r *modelRun) gc() {
	var ids []string
	for _, j := range r.jobsWith("") {
		if j.terminal() || r.rng.IntN(4) == 0 {
			ids = append(ids, j.id)
		}
	}
	before := r.now.Add(-time.Duration(r.rng.IntN(30)) * time.Second)
	r.note("gc %v before %s", ids, before.Format(time.TimeOnly))
	r.m.gc(ids, before)
	r.expect(GCJobsType, GCJobsRequest{JobIDs: ids, Before: before}, false)
}

// snapshotRestore snapshots the FSM, restores the snapshot into a new FSM,
// checks the two hold the same, and goes on with the new one.
func (r *modelRun) snapshotRestore() {
	r.note("snapshot and restore")
	fs, err := r.h.fsm.Snapshot()
	if err != nil {
		r.fail("snapshot: %v", err)
	}
	sink := &memSink{}
	if err := fs.Persist(sink); err != nil {
		r.fail("persist: %v", err)
	}
	fs.Release()
	restored := NewFSM(r.h.fsm.log)
	if err := restored.Restore(readCloser(sink.Bytes())); err != nil {
		r.fail("restore: %v", err)
	}
	live, back := r.h.fsm.Store().Snapshot(), restored.Store().Snapshot()
	for _, c := range []struct {
		what       string
		live, back any
	}{
		{"jobs", live.Jobs(nil), back.Jobs(nil)},
		{"allocations", live.Allocs(nil), back.Allocs(nil)},
		{"nodes", live.Nodes(nil), back.Nodes(nil)},
		{"servers", live.Servers(), back.Servers()},
		{"indexes", []uint64{live.Index(TableJobs), live.Index(TableAllocs), live.Index(TableNodes)},
			[]uint64{back.Index(TableJobs), back.Index(TableAllocs), back.Index(TableNodes)}},
	} {
		if !reflect.DeepEqual(c.live, c.back) {
			lj, _ := json.Marshal(c.live)
			bj, _ := json.Marshal(c.back)
			r.fail("restored %s differ:\nlive     %s\nrestored %s", c.what, lj, bj)
		}
	}
	r.h.fsm = restored
	r.restores++
}

// check compares the FSM to the model and checks the invariants on the
// FSM's own state.
func (r *modelRun) check() {
	r.t.Helper()
	snap := r.h.snap()
	if d := r.m.diff(snap); len(d) > 0 {
		r.fail("the FSM and the model differ:\n  %s", strings.Join(d, "\n  "))
	}
	nodes := map[string]*api.Node{}
	var draining []string
	for _, n := range snap.Nodes(nil) {
		nodes[n.ID] = n
		if n.Drain != nil {
			draining = append(draining, n.ID)
		}
	}
	// The flag indexes hold exactly the flagged records.
	var indexed []string
	for _, n := range snap.DrainingNodes() {
		indexed = append(indexed, n.ID)
	}
	if !slices.Equal(indexed, draining) {
		r.fail("draining nodes by index %v, by scan %v", indexed, draining)
	}
	held := map[gpuKey][]holding{}
	for _, a := range snap.Allocs(nil) {
		if a.Terminal() {
			continue
		}
		for _, g := range a.GPUs {
			h := holding{alloc: a.ID, milli: 1000}
			if a.GPUMilli > 0 {
				h.milli, h.mem = a.GPUMilli, a.GPUMemoryBytes
			}
			held[gpuKey{a.NodeID, g}] = append(held[gpuKey{a.NodeID, g}], h)
		}
	}
	for _, hs := range held {
		slices.SortFunc(hs, func(a, b holding) int { return strings.Compare(a.alloc, b.alloc) })
	}
	if want := r.m.holdings(); !reflect.DeepEqual(held, want) {
		r.fail("GPU holdings differ:\nFSM   %v\nmodel %v", held, want)
	}
	for k, hs := range held {
		var milli, mem int64
		whole := false
		for _, h := range hs {
			milli, mem = milli+h.milli, mem+h.mem
			whole = whole || h.milli == 1000
		}
		var gpuMem int64
		if n := nodes[k.node]; n != nil && k.gpu < len(n.GPUs) {
			gpuMem = n.GPUs[k.gpu].MemoryBytes
		}
		if (whole && len(hs) > 1) || milli > 1000 || mem > gpuMem {
			r.fail("GPU %d of node %s over-committed: %+v (%d bytes of memory)", k.gpu, k.node, hs, gpuMem)
		}
	}
	byJob := map[string][]*api.Allocation{}
	for _, a := range snap.Allocs(nil) {
		byJob[a.JobID] = append(byJob[a.JobID], a)
	}
	for _, j := range snap.Jobs(nil) {
		ranks := map[int]bool{}
		for _, a := range byJob[j.ID] {
			if a.Attempt == j.RestartCount {
				ranks[a.Rank] = true
			}
		}
		whole := len(ranks) == j.Spec.Replicas
		if (len(ranks) != 0 && !whole) || (j.Status == api.JobRunning && !whole) || (j.Status == api.JobPending && len(ranks) != 0) {
			r.fail("job %s (%s, attempt %d) has ranks %v of its current attempt, of %d", j.ID, j.Status, j.RestartCount, slices.Sorted(maps.Keys(ranks)), j.Spec.Replicas)
		}
	}
}
