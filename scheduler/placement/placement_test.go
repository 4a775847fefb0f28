package placement

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ark-sched/ark/internal/puretest"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

const gi = int64(1) << 30

// node builds a ready node named name (its ID is "id-"+name) with n GPUs of
// one model and memory, 64 cores and 512Gi of host memory.
func node(name string, n int, model string, memGi int64) *api.Node {
	nd := &api.Node{ID: "id-" + name, Name: name, Status: api.NodeReady, CPUMilli: 64000, MemoryBytes: 512 * gi}
	for i := 0; i < n; i++ {
		nd.GPUs = append(nd.GPUs, api.GPU{Index: i, UUID: fmt.Sprintf("GPU-%s-%d", name, i), Model: model, MemoryBytes: memGi * gi})
	}
	return nd
}

func h200(name string, n int) *api.Node { return node(name, n, "NVIDIA H200 141GB HBM3e", 141) }

func down(n *api.Node) *api.Node { n.Status = api.NodeDown; return n }

// job builds a pending job asking for replicas x gpus with 1 core and 1Gi
// per replica.
func job(id string, replicas, gpus int, opts ...func(*spec.Job)) *api.Job {
	s := spec.Job{Name: id, Kind: spec.KindBatch, Replicas: replicas,
		Resources: spec.Resources{GPUs: gpus, CPU: "1", Memory: "1Gi"},
		Task:      spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"true"}}}}
	for _, o := range opts {
		o(&s)
	}
	return &api.Job{ID: id, Name: id, Status: api.JobPending, Spec: s}
}

func sameNode(s *spec.Job) { s.Topology.SameNode = true }

func model(m string) func(*spec.Job) { return func(s *spec.Job) { s.Resources.GPUModel = m } }

func gpuMem(q string) func(*spec.Job) {
	return func(s *spec.Job) { s.Resources.GPUMemory = spec.Quantity(q) }
}

func cpu(q string) func(*spec.Job) { return func(s *spec.Job) { s.Resources.CPU = spec.Quantity(q) } }

func mem(q string) func(*spec.Job) {
	return func(s *spec.Job) { s.Resources.Memory = spec.Quantity(q) }
}

// live is a running allocation holding GPUs on a node.
func live(id, nodeID string, gpus ...int) *api.Allocation {
	return &api.Allocation{ID: id, JobID: "job-" + id, NodeID: nodeID, GPUs: gpus, CPUMilli: 1000, MemoryBytes: gi, Status: api.AllocRunning, DesiredStatus: api.DesiredRun}
}

// asg renders a placement as "rank@node[gpus] ..." for compact comparisons.
func asg(p Placement) string {
	var parts []string
	for _, a := range p.Assignments {
		parts = append(parts, fmt.Sprintf("%d@%s%v", a.Rank, strings.TrimPrefix(a.NodeID, "id-"), a.GPUs))
	}
	return strings.Join(parts, " ")
}

func TestFirstFit(t *testing.T) {
	tests := []struct {
		name    string
		in      Input
		placed  map[string]string // job ID -> asg()
		pending map[string]string // job ID -> reason prefix (and substrings after "|")
	}{
		{
			name:    "no nodes",
			in:      Input{Pending: []*api.Job{job("a", 1, 1)}},
			pending: map[string]string{"a": "no nodes are registered"},
		},
		{
			name:   "single rank takes lowest GPUs of first node by name",
			in:     Input{Nodes: []*api.Node{h200("n2", 8), h200("n1", 8)}, Pending: []*api.Job{job("a", 1, 2)}},
			placed: map[string]string{"a": "0@n1[0 1]"},
		},
		{
			name: "gang spans nodes when one node is too small",
			in:   Input{Nodes: []*api.Node{h200("n1", 4), h200("n2", 4)}, Pending: []*api.Job{job("a", 3, 2)}},
			// Ranks 0 and 1 fill n1; rank 2 goes to n2.
			placed: map[string]string{"a": "0@n1[0 1] 1@n1[2 3] 2@n2[0 1]"},
		},
		{
			name:   "gang never reuses a GPU within itself",
			in:     Input{Nodes: []*api.Node{h200("n1", 2)}, Pending: []*api.Job{job("a", 2, 1)}},
			placed: map[string]string{"a": "0@n1[0] 1@n1[1]"},
		},
		{
			name:   "live allocations' GPUs are never reused; lowest free chosen",
			in:     Input{Nodes: []*api.Node{h200("n1", 8)}, Allocs: []*api.Allocation{live("x", "id-n1", 0, 2, 3)}, Pending: []*api.Job{job("a", 1, 3)}},
			placed: map[string]string{"a": "0@n1[1 4 5]"},
		},
		{
			name: "terminal allocations free their GPUs",
			in: Input{Nodes: []*api.Node{h200("n1", 1)}, Allocs: []*api.Allocation{func() *api.Allocation {
				a := live("x", "id-n1", 0)
				a.Status = api.AllocFailed
				return a
			}()}, Pending: []*api.Job{job("a", 1, 1)}},
			placed: map[string]string{"a": "0@n1[0]"},
		},
		{
			name: "all or nothing: a gang that cannot fit leaves usage for a later job",
			in: Input{Nodes: []*api.Node{h200("n1", 4), h200("n2", 4)}, Pending: []*api.Job{
				job("big", 3, 4), // 12 GPUs on 8: would take n1 and n2, then fail
				job("small", 2, 4),
			}},
			placed:  map[string]string{"small": "0@n1[0 1 2 3] 1@n2[0 1 2 3]"},
			pending: map[string]string{"big": "cannot fit on this cluster: 3 replica(s) x 4 GPU(s), but the ready nodes hold only 2 such replicas even when idle"},
		},
		{
			name: "earlier job in the pass takes GPUs from later ones",
			in: Input{Nodes: []*api.Node{h200("n1", 4)}, Pending: []*api.Job{
				job("first", 1, 3), job("second", 1, 2),
			}},
			placed:  map[string]string{"first": "0@n1[0 1 2]"},
			pending: map[string]string{"second": "waiting for resources: 1 replica(s) x 2 GPU(s) (0/1 nodes can take a replica now; 1 node lacks 2 free GPUs)"},
		},
		{
			name: "sameNode keeps the gang on one node",
			in: Input{Nodes: []*api.Node{h200("n1", 2), h200("n2", 4)}, Pending: []*api.Job{
				job("a", 2, 2, sameNode),
			}},
			placed: map[string]string{"a": "0@n2[0 1] 1@n2[2 3]"},
		},
		{
			name: "sameNode larger than any node is impossible",
			in: Input{Nodes: []*api.Node{h200("n1", 4), h200("n2", 4)}, Pending: []*api.Job{
				job("a", 2, 3, sameNode),
			}},
			pending: map[string]string{"a": "cannot fit on this cluster: 2 replica(s) x 3 GPU(s) on one node needs 6 GPUs, the largest ready node has 4 matching"},
		},
		{
			name: "sameNode waits when the big node is busy",
			in: Input{Nodes: []*api.Node{h200("n1", 2), h200("n2", 4)}, Allocs: []*api.Allocation{live("x", "id-n2", 3)},
				Pending: []*api.Job{job("a", 2, 2, sameNode)}},
			pending: map[string]string{"a": "waiting for resources: 2 replica(s) x 2 GPU(s) (2/2 nodes can take a replica now; 2 nodes lack room for all 2 replicas (sameNode))"},
		},
		{
			name: "GPU model filter (case-insensitive substring)",
			in: Input{Nodes: []*api.Node{node("a1", 8, "NVIDIA A100-SXM4-80GB", 80), h200("h1", 8)}, Pending: []*api.Job{
				job("a", 1, 1, model("h200")),
			}},
			placed: map[string]string{"a": "0@h1[0]"},
		},
		{
			name: "GPU model nowhere is impossible and says which model",
			in: Input{Nodes: []*api.Node{node("a1", 8, "NVIDIA A100-SXM4-80GB", 80)}, Pending: []*api.Job{
				job("a", 1, 1, model("B200")),
			}},
			pending: map[string]string{"a": "cannot fit on this cluster: 1 replica(s) x 1 GPU(s) of model B200 needs 1 GPUs on one node, the largest ready node has 0 matching (0/1 nodes can take a replica now; 1 node lacks GPUs of model B200)"},
		},
		{
			name: "GPU memory filter",
			in: Input{Nodes: []*api.Node{node("a1", 8, "NVIDIA A100-SXM4-80GB", 80), h200("h1", 8)}, Pending: []*api.Job{
				job("a", 1, 1, gpuMem("100Gi")),
			}},
			placed: map[string]string{"a": "0@h1[0]"},
		},
		{
			name: "mixed GPUs on one node: only matching indexes are used",
			in: Input{Nodes: []*api.Node{func() *api.Node {
				n := node("m", 2, "NVIDIA L4", 24)
				n.GPUs = append(n.GPUs, api.GPU{Index: 2, Model: "NVIDIA H200", MemoryBytes: 141 * gi}, api.GPU{Index: 3, Model: "NVIDIA H200", MemoryBytes: 141 * gi})
				return n
			}()}, Pending: []*api.Job{job("a", 1, 2, model("H200"))}},
			placed: map[string]string{"a": "0@m[2 3]"},
		},
		{
			name: "down nodes are skipped",
			in: Input{Nodes: []*api.Node{down(h200("n1", 8)), h200("n2", 8)}, Pending: []*api.Job{
				job("a", 1, 8),
			}},
			placed: map[string]string{"a": "0@n2[0 1 2 3 4 5 6 7]"},
		},
		{
			name: "only down nodes: waiting, they may come back",
			in: Input{Nodes: []*api.Node{down(h200("n1", 8))}, Pending: []*api.Job{
				job("a", 1, 1),
			}},
			pending: map[string]string{"a": "waiting for resources: 1 replica(s) x 1 GPU(s), and no node is ready (0/1 nodes can take a replica now; 1 node is not ready)"},
		},
		{
			name: "replica needs more GPUs than any node has",
			in: Input{Nodes: []*api.Node{h200("n1", 4), h200("n2", 4)}, Pending: []*api.Job{
				job("a", 1, 8),
			}},
			pending: map[string]string{"a": "cannot fit on this cluster: 1 replica(s) x 8 GPU(s) needs 8 GPUs on one node, the largest ready node has 4 matching (0/2 nodes can take a replica now; 2 nodes have fewer GPUs in total than one replica needs)"},
		},
		{
			name: "CPU limit",
			in: Input{Nodes: []*api.Node{func() *api.Node { n := h200("n1", 8); n.CPUMilli = 1500; return n }(), h200("n2", 8)},
				Pending: []*api.Job{job("a", 2, 1, cpu("1"))}},
			placed: map[string]string{"a": "0@n1[0] 1@n2[0]"},
		},
		{
			name: "CPU limit waits",
			in: Input{Nodes: []*api.Node{func() *api.Node { n := h200("n1", 8); n.CPUMilli = 1500; return n }()},
				Allocs:  []*api.Allocation{live("x", "id-n1", 0)},
				Pending: []*api.Job{job("a", 1, 1, cpu("500m"))}},
			placed: map[string]string{"a": "0@n1[1]"},
		},
		{
			name: "CPU exhausted",
			in: Input{Nodes: []*api.Node{func() *api.Node { n := h200("n1", 8); n.CPUMilli = 1500; return n }()},
				Allocs:  []*api.Allocation{live("x", "id-n1", 0)},
				Pending: []*api.Job{job("a", 1, 1, cpu("501m"))}},
			pending: map[string]string{"a": "waiting for resources: 1 replica(s) x 1 GPU(s) (0/1 nodes can take a replica now; 1 node has too little free CPU)"},
		},
		{
			name: "memory limit",
			in: Input{Nodes: []*api.Node{func() *api.Node { n := h200("n1", 8); n.MemoryBytes = 3 * gi; return n }()},
				Pending: []*api.Job{job("a", 2, 1, mem("2Gi"))}},
			pending: map[string]string{"a": "cannot fit on this cluster: 2 replica(s) x 1 GPU(s), but the ready nodes hold only 1 such replicas even when idle (1/1 nodes can take a replica now); the nodes with room hold only 1 of 2 replicas now"},
		},
		{
			name: "memory exhausted on an idle node",
			in: Input{Nodes: []*api.Node{func() *api.Node { n := h200("n1", 8); n.MemoryBytes = gi; return n }()},
				Pending: []*api.Job{job("a", 1, 1, mem("2Gi"))}},
			pending: map[string]string{"a": "cannot fit on this cluster: 1 replica(s) x 1 GPU(s), but the ready nodes hold only 0 such replicas even when idle (0/1 nodes can take a replica now; 1 node has too little free memory)"},
		},
		{
			name: "waiting: cluster could hold it when idle",
			in: Input{Nodes: []*api.Node{h200("n1", 8), h200("n2", 8)},
				Allocs:  []*api.Allocation{live("x", "id-n1", 0, 1, 2, 3, 4), live("y", "id-n2", 0, 1, 2, 3, 4)},
				Pending: []*api.Job{job("a", 2, 4)}},
			pending: map[string]string{"a": "waiting for resources: 2 replica(s) x 4 GPU(s) (0/2 nodes can take a replica now; 2 nodes lack 4 free GPUs)"},
		},
		{
			name: "idle nodes in the explanation do not crash it",
			in: Input{Nodes: []*api.Node{h200("n1", 8), h200("n2", 2)},
				Allocs:  []*api.Allocation{live("x", "id-n1", 0)},
				Pending: []*api.Job{job("a", 2, 8)}},
			pending: map[string]string{"a": "cannot fit on this cluster: 2 replica(s) x 8 GPU(s), but the ready nodes hold only 1 such replicas even when idle (0/2 nodes can take a replica now; 1 node has fewer GPUs in total than one replica needs, 1 node lacks 8 free GPUs)"},
		},
		{
			name: "invalid resources",
			in: Input{Nodes: []*api.Node{h200("n1", 8)}, Pending: []*api.Job{
				job("a", 1, 1, mem("lots")),
			}},
			pending: map[string]string{"a": `invalid resources: resources.memory: invalid quantity "lots"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := NodeUsage(tt.in.Allocs)
			res := FirstFit(tt.in)
			got := map[string]string{}
			for _, p := range res.Placements {
				got[p.JobID] = asg(p)
				for _, a := range p.Assignments {
					if len(a.GPUs) != p.Request.GPUs {
						t.Errorf("job %s rank %d holds %d GPUs, request is %d", p.JobID, a.Rank, len(a.GPUs), p.Request.GPUs)
					}
				}
			}
			if len(got) != len(tt.placed) {
				t.Errorf("placed %v, want %v", got, tt.placed)
			}
			for id, want := range tt.placed {
				if got[id] != want {
					t.Errorf("job %s placed %q, want %q", id, got[id], want)
				}
			}
			if len(res.Unplaced) != len(tt.pending) {
				t.Errorf("unplaced %v, want %v", res.Unplaced, tt.pending)
			}
			for id, want := range tt.pending {
				if got := res.Unplaced[id]; !strings.HasPrefix(got, want) {
					t.Errorf("job %s reason\n got %q\nwant prefix %q", id, got, want)
				}
			}
			if after := NodeUsage(tt.in.Allocs); !reflect.DeepEqual(after, before) {
				t.Errorf("FirstFit changed the live allocations' usage")
			}
		})
	}
}

// TestFirstFitValidAgainstFit checks every assignment FirstFit makes with
// Fit, the check the FSM re-runs before commit, so the two never disagree.
func TestFirstFitValidAgainstFit(t *testing.T) {
	nodes := []*api.Node{h200("n1", 8), h200("n2", 4), down(h200("n3", 8)), node("a1", 8, "NVIDIA A100", 80)}
	allocs := []*api.Allocation{live("x", "id-n1", 1, 5), live("y", "id-a1", 0)}
	pending := []*api.Job{
		job("a", 3, 2), job("b", 2, 3, sameNode), job("c", 1, 4, model("A100")),
		job("d", 4, 1, gpuMem("100Gi")), job("e", 1, 8),
	}
	res := FirstFit(Input{Nodes: nodes, Allocs: allocs, Pending: pending})
	byID := map[string]*api.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	usage := NodeUsage(allocs)
	for _, p := range res.Placements {
		for _, a := range p.Assignments {
			al := p.Request.Allocation(fmt.Sprintf("%s-%d", p.JobID, a.Rank), byID[a.NodeID], a.GPUs)
			al.NodeID = a.NodeID
			if err := Fit(byID[a.NodeID], usage[a.NodeID], al, p.Request); err != nil {
				t.Errorf("job %s rank %d: FirstFit placed what Fit refuses: %v", p.JobID, a.Rank, err)
			}
			usage[a.NodeID] = usage[a.NodeID].Add(al)
		}
	}
	if len(res.Placements)+len(res.Unplaced) != len(pending) {
		t.Errorf("%d placed + %d unplaced, want %d jobs", len(res.Placements), len(res.Unplaced), len(pending))
	}
}

func TestFit(t *testing.T) {
	n := h200("n1", 4)
	n.CPUMilli, n.MemoryBytes = 4000, 8*gi
	used := NodeUsage([]*api.Allocation{live("x", "id-n1", 2)}) // 1 core, 1Gi
	req := Request{GPUs: 2, CPUMilli: 1000, MemoryBytes: gi}
	alloc := func(gpus ...int) *api.Allocation {
		return &api.Allocation{ID: "new", NodeID: "id-n1", GPUs: gpus, CPUMilli: 1000, MemoryBytes: gi}
	}
	tests := []struct {
		name  string
		node  *api.Node
		used  *Usage
		alloc *api.Allocation
		req   Request
		want  string // "" or an error substring
	}{
		{"fits", n, used[n.ID], alloc(0, 1), req, ""},
		{"fits with nil usage", n, nil, alloc(2, 3), req, ""},
		{"node down", down(h200("d", 4)), nil, alloc(0, 1), req, "node d is down"},
		{"wrong GPU count", n, nil, alloc(0), req, "allocation holds 1 GPUs, job asks for 2"},
		{"double-booked within allocation", n, nil, alloc(1, 1), req, "GPU 1 listed twice"},
		{"index out of range", n, nil, alloc(0, 4), req, "node n1 has no GPU 4"},
		{"negative index", n, nil, alloc(-1, 0), req, "node n1 has no GPU -1"},
		{"held by a live allocation", n, used[n.ID], alloc(1, 2), req, "GPU 2 of node n1 is held by allocation x"},
		{"wrong model", n, nil, alloc(0, 1), Request{GPUs: 2, GPUModel: "A100"}, `model "NVIDIA H200 141GB HBM3e" is not "A100"`},
		{"too little GPU memory", n, nil, alloc(0, 1), Request{GPUs: 2, GPUMemoryBytes: 200 * gi}, "has 151397597184 bytes of memory, job asks for 214748364800"},
		{"CPU", n, &Usage{GPUs: map[int]string{}, CPUMilli: 3500}, alloc(0, 1), req, "node n1 has 500m CPU free, allocation needs 1000m"},
		{"memory", n, &Usage{GPUs: map[int]string{}, MemoryBytes: 7*gi + 1}, alloc(0, 1), req, "bytes of memory free, allocation needs 1073741824"},
		{"exactly full", n, &Usage{GPUs: map[int]string{}, CPUMilli: 3000, MemoryBytes: 7 * gi}, alloc(0, 1), req, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Fit(tt.node, tt.used, tt.alloc, tt.req)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Fit: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Fit accepted, want error %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Fit error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNodeUsage(t *testing.T) {
	done := live("z", "id-n1", 7)
	done.Status = api.AllocSucceeded
	u := NodeUsage([]*api.Allocation{live("x", "id-n1", 0, 1), live("y", "id-n1", 3), live("w", "id-n2", 0), done})
	want := map[string]*Usage{
		"id-n1": {GPUs: map[int]string{0: "x", 1: "x", 3: "y"}, GPUMilli: map[int]int64{0: 1000, 1: 1000, 3: 1000}, GPUMemory: map[int]int64{},
			Jobs: map[int]string{0: "job-x", 1: "job-x", 3: "job-y"}, CPUMilli: 2000, MemoryBytes: 2 * gi},
		"id-n2": {GPUs: map[int]string{0: "w"}, GPUMilli: map[int]int64{0: 1000}, GPUMemory: map[int]int64{}, Jobs: map[int]string{0: "job-w"}, CPUMilli: 1000, MemoryBytes: gi},
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("NodeUsage = %+v, want %+v", u, want)
	}
	c := u["id-n1"].Clone()
	c.GPUs[5] = "q"
	c.CPUMilli++
	if _, ok := u["id-n1"].GPUs[5]; ok || u["id-n1"].CPUMilli != 2000 {
		t.Fatal("Clone shares state with the original")
	}
	var nilUsage *Usage
	if c := nilUsage.Clone(); c == nil || c.GPUs == nil {
		t.Fatal("Clone of nil is not an empty usage")
	}
}

func TestRequestOf(t *testing.T) {
	j := job("a", 2, 4, gpuMem("80Gi"), model("H200"), cpu("1500m"), mem("2Gi"), sameNode)
	got, err := RequestOf(j)
	if err != nil {
		t.Fatal(err)
	}
	want := Request{GPUs: 4, GPUMemoryBytes: 80 * gi, GPUModel: "H200", CPUMilli: 1500, MemoryBytes: 2 * gi, SameNode: true}
	if got != want {
		t.Fatalf("RequestOf = %+v, want %+v", got, want)
	}
	for _, bad := range []func(*spec.Job){gpuMem("x"), cpu("y"), mem("z")} {
		if _, err := RequestOf(job("b", 1, 1, bad)); err == nil {
			t.Errorf("RequestOf accepted a bad quantity")
		}
	}
}

// TestPure keeps the package free of Raft, HTTP and the state store.
func TestPure(t *testing.T) {
	var known []string
	for _, e := range puretest.Deps(t) {
		banned := func(p string) bool {
			return puretest.Under(p, "github.com/hashicorp/raft") || p == "net/http" || puretest.Under(p, "github.com/hashicorp/go-memdb")
		}
		if banned(e.From) || !banned(e.To) {
			continue
		}
		// Known and tracked: scheduler/api holds the HTTP client
		// (client.go) next to the wire types placement needs. Moving the
		// client out of that package makes this check strict.
		if e.From == "github.com/ark-sched/ark/scheduler/api" && e.To == "net/http" {
			known = append(known, e.From+" -> "+e.To)
			continue
		}
		t.Errorf("scheduler/placement depends on %s (imported by %s)", e.To, e.From)
	}
	if len(known) > 0 && !t.Failed() {
		t.Skipf("known impurity, to fix outside this package: %s", strings.Join(known, ", "))
	}
}

func TestModelMatches(t *testing.T) {
	cases := []struct {
		model, want string
		ok          bool
	}{
		{"NVIDIA H200 141GB HBM3e", "H200", true},
		{"NVIDIA H200 141GB HBM3e", "h200", true},
		{"NVIDIA A100-SXM4-80GB", "A100", true},
		{"NVIDIA A100-SXM4-80GB", "A10", false},
		{"NVIDIA A10", "A10", true},
		{"NVIDIA H100 80GB HBM3", "H200", false},
		{"NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", true},
	}
	for _, tc := range cases {
		if got := ModelMatches(tc.model, tc.want); got != tc.ok {
			t.Errorf("ModelMatches(%q, %q) = %v, want %v", tc.model, tc.want, got, tc.ok)
		}
	}
}
