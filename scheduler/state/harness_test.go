package state

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

const gi = int64(1) << 30

// t0 is the wall time every command in these tests carries.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// harness drives an FSM the way Raft does: one entry per index.
type harness struct {
	t     *testing.T
	fsm   *FSM
	index uint64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return &harness{t: t, fsm: NewFSM(zaptest.NewLogger(t))}
}

// apply encodes a command and applies it at the next index.
func (h *harness) apply(typ MessageType, req any) any {
	h.t.Helper()
	data, err := Encode(typ, req)
	if err != nil {
		h.t.Fatalf("encode %s: %v", typ, err)
	}
	h.index++
	return h.fsm.ApplyEntry(h.index, data)
}

// ok applies a command that must succeed.
func (h *harness) ok(typ MessageType, req any) any {
	h.t.Helper()
	resp := h.apply(typ, req)
	if err, isErr := resp.(error); isErr {
		h.t.Fatalf("%s at index %d: %v", typ, h.index, err)
	}
	return resp
}

func (h *harness) snap() *Snapshot { return h.fsm.Store().Snapshot() }

func (h *harness) job(id string) *api.Job {
	h.t.Helper()
	j := h.snap().Job(nil, id)
	if j == nil {
		h.t.Fatalf("job %s not in the store", id)
	}
	return j
}

func (h *harness) alloc(id string) *api.Allocation {
	h.t.Helper()
	a := h.snap().Alloc(nil, id)
	if a == nil {
		h.t.Fatalf("allocation %s not in the store", id)
	}
	return a
}

// addNode registers a ready node with n H200s, 64 cores and 512Gi.
func (h *harness) addNode(name string, n int) *api.Node {
	h.t.Helper()
	nd := testNode(name, n)
	h.ok(UpsertNodeType, UpsertNodeRequest{Node: nd})
	return h.snap().Node(nil, nd.ID)
}

// addJob registers a pending job.
func (h *harness) addJob(id string, replicas, gpus int) *api.Job {
	h.t.Helper()
	h.ok(RegisterJobType, RegisterJobRequest{Job: testJob(id, replicas, gpus)})
	return h.job(id)
}

// place commits a plan placing one job and returns the response.
func (h *harness) place(placements ...JobPlacement) *ApplyPlanResponse {
	h.t.Helper()
	resp := h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Placements: placements}, Time: t0})
	r, isResp := resp.(*ApplyPlanResponse)
	if !isResp {
		h.t.Fatalf("ApplyPlan answered %T %v", resp, resp)
	}
	return r
}

// run places a job with one rank per given slot and checks it committed.
func (h *harness) run(jobID string, slots ...slot) {
	h.t.Helper()
	r := h.place(placementOf(jobID, slots...))
	if len(r.Placed) != 1 || r.Placed[0] != jobID {
		h.t.Fatalf("placing %s: placed %v, rejected %v", jobID, r.Placed, r.Rejected)
	}
}

func testNode(name string, n int) *api.Node {
	nd := &api.Node{ID: "id-" + name, Name: name, Address: "10.0.0." + name[len(name)-1:], Status: api.NodeReady,
		CPUMilli: 64000, MemoryBytes: 512 * gi, RegisterTime: t0}
	for i := 0; i < n; i++ {
		nd.GPUs = append(nd.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", name, i), Model: "NVIDIA H200", MemoryBytes: 141 * gi})
	}
	return nd
}

func testJob(id string, replicas, gpus int) *api.Job {
	s := spec.Job{Name: id, Namespace: "default", Queue: "default", Kind: spec.KindBatch, Priority: 50, Replicas: replicas,
		Resources: spec.Resources{GPUs: gpus, CPU: "1", Memory: "1Gi"},
		Task:      spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
	return &api.Job{ID: id, Name: id, Namespace: "default", Queue: "default", Kind: spec.KindBatch, Priority: 50,
		Status: "whatever the client says", Spec: s, SubmitTime: t0}
}

// slot is where one rank goes: a node name and GPU indexes.
type slot struct {
	node string
	gpus []int
}

func on(node string, gpus ...int) slot { return slot{node, gpus} }

// placementOf builds a job placement with rank i in slots[i], allocation
// IDs jobID-i, and a rendezvous port unique to the job.
func placementOf(jobID string, slots ...slot) JobPlacement {
	p := JobPlacement{JobID: jobID}
	port := 20000 + int(crc(jobID))
	for r, s := range slots {
		p.Allocs = append(p.Allocs, &api.Allocation{
			ID: fmt.Sprintf("%s-%d", jobID, r), JobID: jobID, NodeID: "id-" + s.node, Node: s.node,
			Rank: r, WorldSize: len(slots), GPUs: s.gpus, CPUMilli: 1000, MemoryBytes: gi,
			MasterAddr: "10.0.0.1", MasterPort: port,
			Task: spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}},
		})
	}
	return p
}

func crc(s string) uint16 {
	var h uint16
	for _, c := range []byte(s) {
		h = h*31 + uint16(c)
	}
	return h % 10000
}

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
