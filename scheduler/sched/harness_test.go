package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

const gi = int64(1) << 30

// t0 is when every test cluster starts.
var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// cluster drives the shipped pass over a real FSM the way the server's
// loop does (Pass, Verify, commit), with agents that start what is placed
// and stop what is asked to stop when told to. Time is the test's.
type cluster struct {
	t     *testing.T
	fsm   *state.FSM
	index uint64
	now   time.Time
	cfg   Config
	rng   *rand.Rand
	held  []string
	// preempted[p][v] counts the evictions of v committed for p since p
	// was last placed; ended counts preemptions that ended in their
	// preemptor's placement.
	preempted map[string]map[string]int
	ended     int
}

func newCluster(t *testing.T, cfg Config) *cluster {
	if cfg.CheckpointStore == "" {
		cfg.CheckpointStore = "file:///ckpt"
	}
	return &cluster{t: t, fsm: state.NewFSM(zap.NewNop()), now: t0, cfg: cfg, rng: rand.New(rand.NewPCG(1, 2)),
		preempted: map[string]map[string]int{}}
}

func (c *cluster) apply(typ state.MessageType, req any) any {
	c.t.Helper()
	data, err := state.Encode(typ, req)
	if err != nil {
		c.t.Fatalf("encode %s: %v", typ, err)
	}
	c.index++
	resp := c.fsm.ApplyEntry(c.index, data)
	if err, ok := resp.(error); ok {
		c.t.Fatalf("%s at %d: %v", typ, c.index, err)
	}
	return resp
}

func (c *cluster) snap() *state.Snapshot { return c.fsm.Store().Snapshot() }

// node registers a ready node of n H200s.
func (c *cluster) node(name string, n int) {
	nd := &api.Node{ID: "id-" + name, Name: name, Address: "10.0.0." + name, Status: api.NodeReady,
		CPUMilli: 64000, MemoryBytes: 512 * gi, RegisterTime: c.now}
	for i := 0; i < n; i++ {
		nd.GPUs = append(nd.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", name, i), Model: "NVIDIA H200", MemoryBytes: 141 * gi})
	}
	c.apply(state.UpsertNodeType, state.UpsertNodeRequest{Node: nd})
}

// submit registers a pending job of replicas x gpus at priority prio.
func (c *cluster) submit(id string, replicas, gpus, prio int, edit ...func(*spec.Job)) {
	s := spec.Job{Name: id, Namespace: "default", Queue: "default", Kind: spec.KindBatch, Priority: prio, Replicas: replicas,
		Resources: spec.Resources{GPUs: gpus, CPU: "1", Memory: "1Gi"},
		Task:      spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
	for _, e := range edit {
		e(&s)
	}
	j := &api.Job{ID: id, Name: id, Namespace: "default", Queue: s.Queue, Kind: s.Kind, Priority: prio, Spec: s, SubmitTime: c.now}
	c.apply(state.RegisterJobType, state.RegisterJobRequest{Job: j})
}

// pass runs one scheduling pass and commits its plan as the leader does.
func (c *cluster) pass() *state.ApplyPlanResponse {
	c.t.Helper()
	out := Pass(FromSnapshot(c.snap()), c.cfg, Input{Now: c.now, Held: c.held, Rand: c.rng})
	if out.HeldSet {
		c.held = out.Held
	}
	if out.Empty() {
		return &state.ApplyPlanResponse{}
	}
	plan, rejected := Verify(FromSnapshot(c.snap()), out.Plan)
	if len(rejected) > 0 {
		c.t.Fatalf("a plan made on the latest state failed its own check: %v", rejected)
	}
	r := c.apply(state.ApplyPlanType, &state.ApplyPlanRequest{Plan: plan, Time: c.now}).(*state.ApplyPlanResponse)
	if len(r.Rejected) > 0 {
		c.t.Fatalf("a verified plan was rejected at commit: %v", r.Rejected)
	}
	for _, id := range r.Placed {
		if c.preempted[id] != nil {
			delete(c.preempted, id)
			c.ended++
		}
	}
	for p, victims := range r.Preempted {
		if c.preempted[p] == nil {
			c.preempted[p] = map[string]int{}
		}
		for _, v := range victims {
			c.preempted[p][v]++
		}
	}
	return r
}

// agents reports every new allocation running and every allocation asked
// to stop as ended, as agents do once their tasks start or stop.
func (c *cluster) agents() (changed bool) {
	for _, a := range c.snap().Allocs(nil) {
		var status string
		switch {
		case a.Terminal():
			continue
		case a.DesiredStatus == api.DesiredStop:
			status = api.AllocFailed
		case a.Status == api.AllocPending:
			status = api.AllocRunning
		default:
			continue
		}
		c.apply(state.AllocStatusType, state.AllocStatusRequest{AllocID: a.ID, Update: api.AllocStatusUpdate{Status: status, Message: "test agent"}, Time: c.now})
		changed = true
	}
	return changed
}

// settle alternates passes and agent reports, a second apart, until
// nothing changes (at most rounds times).
func (c *cluster) settle(rounds int) {
	c.t.Helper()
	for range rounds {
		before := c.index
		c.pass()
		c.agents()
		c.now = c.now.Add(time.Second)
		if c.index == before {
			return
		}
	}
}

func (c *cluster) job(id string) *api.Job {
	c.t.Helper()
	j := c.snap().Job(nil, id)
	if j == nil {
		c.t.Fatalf("no job %s", id)
	}
	return j
}
