package state

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// model is an independent, plain-maps account of what the FSM should hold,
// used by TestFSMModel. It shares no code with the FSM or with placement:
// its rules are written out here from the documented behaviour (the
// milli-GPU live allocations hold on a GPU, 1000 for a whole one, add up
// to at most 1000 and the GPU memory they record fits; whether an
// allocation is what its job asks is the leader's check, not the FSM's;
// gangs commit whole; a failed or lost rank restarts or fails the whole
// gang).
type model struct {
	nodes  map[string]*mNode // by ID
	jobs   map[string]*mJob
	allocs map[string]*mAlloc
}

type mNode struct {
	id, name string
	gpuMem   []int64 // memory of each GPU, by index
	ready    bool
	eligible bool
	draining bool
}

type mJob struct {
	id          string
	replicas    int
	gpus        int   // whole GPUs per rank (1 for a share)
	milli       int64 // 0: whole GPUs
	memAsk      int64 // share: GPU memory asked (0: its proportion of the GPU's)
	priority    int
	maxRestarts int
	status      string
	attempt     int // RestartCount
	free        int // restarts that do not count: migrations and preemptions
	endAt       time.Time
}

type mAlloc struct {
	id, job, node string
	rank, attempt int
	gpus          []int
	milli, mem    int64
	status        string
	stop          bool
}

func newModel() *model {
	return &model{nodes: map[string]*mNode{}, jobs: map[string]*mJob{}, allocs: map[string]*mAlloc{}}
}

func (j *mJob) terminal() bool {
	return j.status == api.JobSucceeded || j.status == api.JobFailed || j.status == api.JobCancelled
}

func (a *mAlloc) terminal() bool {
	return a.status == api.AllocSucceeded || a.status == api.AllocFailed || a.status == api.AllocLost
}

// gpuKey names one GPU of one node.
type gpuKey struct {
	node string
	gpu  int
}

// holding is what one live allocation holds of one GPU.
type holding struct {
	alloc      string
	milli, mem int64 // milli 1000 for a whole GPU
}

// holdings lists, per GPU, the live allocations holding it, by ID.
func (m *model) holdings() map[gpuKey][]holding {
	out := map[gpuKey][]holding{}
	for _, id := range slices.Sorted(maps.Keys(m.allocs)) {
		a := m.allocs[id]
		if a.terminal() {
			continue
		}
		for _, g := range a.gpus {
			h := holding{alloc: a.id, milli: 1000}
			if a.milli > 0 {
				h.milli, h.mem = a.milli, a.mem
			}
			k := gpuKey{a.node, g}
			out[k] = append(out[k], h)
		}
	}
	return out
}

// used is the milli and GPU memory held on one GPU.
func (m *model) used(h map[gpuKey][]holding, k gpuKey) (milli, mem int64) {
	for _, x := range h[k] {
		milli += x.milli
		mem += x.mem
	}
	return milli, mem
}

// shareMem is the GPU memory a share of job j holds on a GPU of gpuMem.
func (j *mJob) shareMem(gpuMem int64) int64 {
	if j.milli == 0 {
		return 0
	}
	if j.memAsk > 0 {
		return j.memAsk
	}
	return gpuMem * j.milli / 1000
}

// placeable says why a placement cannot commit, or "" when it can, given
// h, the holdings so far in this plan (which it extends when it can).
func (m *model) placeable(h map[gpuKey][]holding, p JobPlacement) string {
	j := m.jobs[p.JobID]
	switch {
	case j == nil:
		return "no job"
	case j.status != api.JobPending:
		return "not pending"
	case len(p.Allocs) != j.replicas:
		return "replicas"
	}
	tent := map[gpuKey][]holding{}
	ids, ranks := map[string]bool{}, map[int]bool{}
	for _, a := range p.Allocs {
		if m.allocs[a.ID] != nil || ids[a.ID] {
			return "alloc ID taken"
		}
		ids[a.ID] = true
		if a.Rank < 0 || a.Rank >= j.replicas || ranks[a.Rank] {
			return "rank"
		}
		ranks[a.Rank] = true
		// A plan made for an earlier attempt of the job (before it
		// restarted) is stale.
		if a.Attempt != j.attempt {
			return "stale attempt"
		}
		n := m.nodes[a.NodeID]
		switch {
		case n == nil:
			return "no node"
		case !n.eligible:
			return "ineligible"
		case !n.ready:
			return "down"
		}
		// What the allocation holds is its own record: whether that is
		// what the job asks (count, share, memory) is the leader's check.
		milliOf := int64(1000)
		if a.GPUMilli > 0 {
			milliOf = a.GPUMilli
		}
		seen := map[int]bool{}
		for _, g := range a.GPUs {
			if g < 0 || g >= len(n.gpuMem) || seen[g] {
				return "GPU index"
			}
			seen[g] = true
			k := gpuKey{a.NodeID, g}
			milli, mem := m.used(h, k)
			for _, x := range tent[k] {
				milli, mem = milli+x.milli, mem+x.mem
			}
			if milli+milliOf > 1000 || mem+a.GPUMemoryBytes > n.gpuMem[g] {
				return "GPU busy"
			}
			hh := holding{alloc: a.ID, milli: milliOf, mem: a.GPUMemoryBytes}
			tent[k] = append(tent[k], hh)
		}
	}
	for k, xs := range tent {
		h[k] = append(h[k], xs...)
	}
	return ""
}

// plan applies a plan the way the FSM should: placements in order, each
// whole or not at all, then preemptions in order. It returns the placed
// jobs and the preempting jobs whose preemption committed.
func (m *model) plan(req ApplyPlanRequest) (placed, preempted []string) {
	h := m.holdings()
	for _, p := range req.Plan.Placements {
		if m.placeable(h, p) != "" {
			continue
		}
		j := m.jobs[p.JobID]
		for _, a := range p.Allocs {
			m.allocs[a.ID] = &mAlloc{id: a.ID, job: j.id, node: a.NodeID, rank: a.Rank, attempt: a.Attempt,
				gpus: slices.Clone(a.GPUs), milli: a.GPUMilli, mem: a.GPUMemoryBytes, status: api.AllocPending}
		}
		j.status = api.JobRunning
		placed = append(placed, j.id)
	}
	for _, pr := range req.Plan.Preemptions {
		if !m.preemptable(pr) {
			continue
		}
		for _, id := range pr.Victims {
			v := m.jobs[id]
			v.free++
			m.requeue(v)
		}
		preempted = append(preempted, pr.JobID)
	}
	return placed, preempted
}

func (m *model) preemptable(pr Preemption) bool {
	j := m.jobs[pr.JobID]
	if j == nil || j.status != api.JobPending || len(pr.Victims) == 0 {
		return false
	}
	for _, id := range pr.Victims {
		v := m.jobs[id]
		if v == nil || v == j || v.status != api.JobRunning || (v.priority >= j.priority && !pr.Reclaim) {
			return false
		}
	}
	return true
}

// requeue sends a job back to the queue as its next attempt and asks its
// live allocations to stop (they hold their GPUs until they end).
func (m *model) requeue(j *mJob) {
	j.attempt++
	j.status = api.JobPending
	m.stopLive(j.id, "")
}

func (m *model) stopLive(jobID, skip string) {
	for _, a := range m.allocs {
		if a.job == jobID && a.id != skip && !a.terminal() {
			a.stop = true
		}
	}
}

// reconcile derives a job's status from its current attempt's allocations.
func (m *model) reconcile(j *mJob, now time.Time) {
	if j == nil || j.terminal() {
		return
	}
	var cur []*mAlloc
	for _, a := range m.allocs {
		if a.job == j.id && a.attempt == j.attempt {
			cur = append(cur, a)
		}
	}
	succeeded := 0
	var failed *mAlloc
	for _, a := range cur {
		switch a.status {
		case api.AllocSucceeded:
			succeeded++
		case api.AllocFailed, api.AllocLost:
			if failed == nil || a.rank < failed.rank {
				failed = a
			}
		}
	}
	switch {
	case failed != nil && j.attempt-j.free < j.maxRestarts:
		m.requeue(j)
	case failed != nil:
		j.status, j.endAt = api.JobFailed, now
		m.stopLive(j.id, failed.id)
	case len(cur) > 0 && succeeded == len(cur):
		j.status, j.endAt = api.JobSucceeded, now
	}
}

// allocStatus applies an agent's report; it says whether the FSM should
// refuse it.
func (m *model) allocStatus(id, status string, now time.Time) (refused bool) {
	a := m.allocs[id]
	switch {
	case a == nil:
		return true
	case status != api.AllocPending && status != api.AllocRunning && status != api.AllocSucceeded && status != api.AllocFailed:
		return true
	case a.terminal() || a.status == status:
		return false
	}
	a.status = status
	m.reconcile(m.jobs[a.job], now)
	return false
}

func (m *model) nodeStatus(id, status string, now time.Time) (refused bool) {
	n := m.nodes[id]
	if n == nil {
		return true
	}
	if n.ready == (status == api.NodeReady) {
		return false
	}
	n.ready = status == api.NodeReady
	if n.ready {
		return false
	}
	jobs := map[string]bool{}
	for _, a := range m.allocs {
		if a.node == id && !a.terminal() {
			a.status, a.stop = api.AllocLost, true
			jobs[a.job] = true
		}
	}
	for _, jid := range slices.Sorted(maps.Keys(jobs)) {
		m.reconcile(m.jobs[jid], now)
	}
	return false
}

// register records a node's (re)registration: the same ID keeps what the
// operator set (eligibility, drain); a new ID may take the name of a node
// that is down.
func (m *model) register(id, name string, gpuMem []int64) (refused bool) {
	for _, other := range m.nodes {
		if other.name == name && other.id != id {
			if other.ready {
				return true
			}
			delete(m.nodes, other.id)
		}
	}
	if n := m.nodes[id]; n != nil {
		n.ready = true
		return false
	}
	m.nodes[id] = &mNode{id: id, name: name, gpuMem: slices.Clone(gpuMem), ready: true, eligible: true}
	return false
}

func (m *model) cancel(id string) (refused bool) {
	j := m.jobs[id]
	if j == nil || j.terminal() {
		return true
	}
	j.status = api.JobCancelled
	m.stopLive(id, "")
	return false
}

func (m *model) migrate(ids []string) {
	for _, id := range ids {
		if j := m.jobs[id]; j != nil && j.status == api.JobRunning {
			j.free++
			m.requeue(j)
		}
	}
}

func (m *model) gc(ids []string, before time.Time) {
	for _, id := range ids {
		j := m.jobs[id]
		if j == nil || !j.terminal() || !j.endAt.Before(before) {
			continue
		}
		live := false
		for _, a := range m.allocs {
			live = live || (a.job == id && !a.terminal())
		}
		if live {
			continue
		}
		for aid, a := range m.allocs {
			if a.job == id {
				delete(m.allocs, aid)
			}
		}
		delete(m.jobs, id)
	}
}

// diff compares the FSM's state to the model, returning the first
// differences found.
func (m *model) diff(snap *Snapshot) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	jobs := snap.Jobs(nil)
	if len(jobs) != len(m.jobs) {
		add("FSM has %d jobs, model %d", len(jobs), len(m.jobs))
	}
	for _, j := range jobs {
		mj := m.jobs[j.ID]
		switch {
		case mj == nil:
			add("job %s: in the FSM only", j.ID)
		case j.Status != mj.status || j.RestartCount != mj.attempt || j.Preemptions+j.Migrations != mj.free:
			add("job %s: FSM %s attempt %d free %d, model %s attempt %d free %d", j.ID,
				j.Status, j.RestartCount, j.Preemptions+j.Migrations, mj.status, mj.attempt, mj.free)
		}
	}
	allocs := snap.Allocs(nil)
	if len(allocs) != len(m.allocs) {
		add("FSM has %d allocations, model %d", len(allocs), len(m.allocs))
	}
	for _, a := range allocs {
		ma := m.allocs[a.ID]
		switch {
		case ma == nil:
			add("allocation %s: in the FSM only", a.ID)
		case a.JobID != ma.job || a.NodeID != ma.node || a.Rank != ma.rank || a.Attempt != ma.attempt ||
			!slices.Equal(a.GPUs, ma.gpus) || a.GPUMilli != ma.milli || a.GPUMemoryBytes != ma.mem ||
			a.Status != ma.status || (a.DesiredStatus == api.DesiredStop) != ma.stop:
			add("allocation %s: FSM %+v, model %+v", a.ID, *a, *ma)
		}
	}
	nodes := snap.Nodes(nil)
	if len(nodes) != len(m.nodes) {
		add("FSM has %d nodes, model %d", len(nodes), len(m.nodes))
	}
	for _, n := range nodes {
		mn := m.nodes[n.ID]
		switch {
		case mn == nil:
			add("node %s: in the FSM only", n.ID)
		case (n.Status == api.NodeReady) != mn.ready || n.Ineligible == mn.eligible || (n.Drain != nil) != mn.draining:
			add("node %s: FSM status %s ineligible %v draining %v, model ready %v eligible %v draining %v",
				n.ID, n.Status, n.Ineligible, n.Drain != nil, mn.ready, mn.eligible, mn.draining)
		}
	}
	return out
}
