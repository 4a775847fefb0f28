package placement

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// share makes a job ask for milli of one GPU (and, when given, that much
// GPU memory for the share).
func share(milli int, gpuMemory string) func(*spec.Job) {
	return func(s *spec.Job) {
		s.Resources.GPUs, s.Resources.GPUMilli = 1, milli
		s.Resources.GPUMemory = spec.Quantity(gpuMemory)
	}
}

// liveShare is a running allocation holding milli (and mem bytes of GPU
// memory) of one GPU.
func liveShare(id, nodeID string, gpu int, milli, mem int64) *api.Allocation {
	a := live(id, nodeID, gpu)
	a.GPUMilli, a.GPUMemoryBytes = milli, mem
	return a
}

func TestFitShares(t *testing.T) {
	n := h200("n1", 2) // 141Gi per GPU
	shareReq := Request{GPUs: 1, GPUMilli: 500, GPUMemoryBytes: 40 * gi, CPUMilli: 1000, MemoryBytes: gi}
	noMem := Request{GPUs: 1, GPUMilli: 500, CPUMilli: 1000, MemoryBytes: gi}
	whole := Request{GPUs: 1, CPUMilli: 1000, MemoryBytes: gi}
	alloc := func(req Request, gpu int) *api.Allocation {
		a := req.Allocation("new", n, []int{gpu})
		a.NodeID = n.ID
		return a
	}
	usage := func(allocs ...*api.Allocation) *Usage { return NodeUsage(allocs)[n.ID] }
	tests := []struct {
		name  string
		used  *Usage
		alloc *api.Allocation
		req   Request
		want  string // "" or an error substring
	}{
		{"share on a free GPU", nil, alloc(shareReq, 0), shareReq, ""},
		{"share next to a share", usage(liveShare("s", n.ID, 0, 500, 40*gi)), alloc(shareReq, 0), shareReq, ""},
		{"shares fill the GPU exactly", usage(liveShare("s", n.ID, 0, 300, 0), liveShare("t", n.ID, 0, 200, 0)), alloc(noMem, 0), noMem, ""},
		{"milli over-commit", usage(liveShare("s", n.ID, 0, 600, 0)), alloc(noMem, 0), noMem,
			"GPU 0 of node n1 has 400m free, allocation needs 500m"},
		{"memory over-commit", usage(liveShare("s", n.ID, 0, 100, 120*gi)), alloc(shareReq, 0), shareReq,
			"GPU 0 of node n1 has 21Gi of memory free, allocation needs 40Gi"},
		{"memory fits exactly", usage(liveShare("s", n.ID, 0, 100, 101*gi)), alloc(shareReq, 0), shareReq, ""},
		{"whole GPU on a shared GPU", usage(liveShare("s", n.ID, 1, 100, 0)), alloc(whole, 1), whole,
			"GPU 1 of node n1 is shared (100m held, by allocation s and maybe others), a whole GPU is asked"},
		{"share on a GPU held whole", usage(live("w", n.ID, 1)), alloc(shareReq, 1), shareReq,
			"GPU 1 of node n1 is held by allocation w"},
		{"share on the other GPU", usage(live("w", n.ID, 1)), alloc(shareReq, 0), shareReq, ""},
		{"share asking more memory than the GPU has", nil, alloc(Request{GPUs: 1, GPUMilli: 500, GPUMemoryBytes: 200 * gi}, 0),
			Request{GPUs: 1, GPUMilli: 500, GPUMemoryBytes: 200 * gi}, "has 151397597184 bytes of memory, job asks for 214748364800"},
		{"allocation's share differs from the job's", nil, alloc(noMem, 0), shareReq,
			"allocation holds 500m with 70.5Gi of GPU 0, job asks for 500m with 40Gi"},
		{"a share naming no memory holds its proportion of the GPU's", usage(liveShare("s", n.ID, 0, 400, 100*gi)), alloc(noMem, 0), noMem,
			"GPU 0 of node n1 has 41Gi of memory free, allocation needs 70.5Gi"},
		{"whole allocation for a shared job", nil, alloc(whole, 0), noMem,
			"allocation holds whole GPUs of each GPU, job asks for 500m"},
		{"share for a whole job", nil, alloc(noMem, 0), whole, "allocation holds 500m with 70.5Gi of each GPU, job asks for whole GPUs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Fit(n, tt.used, tt.alloc, tt.req)
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

func TestUsageShares(t *testing.T) {
	u := NodeUsage([]*api.Allocation{liveShare("a", "n", 0, 300, 10*gi), liveShare("b", "n", 0, 200, 5*gi), live("w", "n", 1)})["n"]
	if u.UsedMilli(0) != 500 || u.UsedGPUMemory(0) != 15*gi || u.UsedMilli(1) != 1000 || u.UsedGPUMemory(1) != 0 || u.UsedMilli(2) != 0 {
		t.Fatalf("usage %+v", u)
	}
	c := u.Clone()
	c.Add(liveShare("c", "n", 0, 100, gi))
	if u.UsedMilli(0) != 500 || u.UsedGPUMemory(0) != 15*gi || c.UsedMilli(0) != 600 {
		t.Fatal("Clone shares the per-GPU maps with the original")
	}
	var none *Usage
	if none.UsedMilli(0) != 0 || none.UsedGPUMemory(0) != 0 {
		t.Fatal("nil usage holds something")
	}
}

func TestRequestOfShare(t *testing.T) {
	got, err := RequestOf(job("a", 2, 1, share(250, "10Gi")))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{GPUs: 1, GPUMilli: 250, GPUMemoryBytes: 10 * gi, CPUMilli: 1000, MemoryBytes: gi}
	if got != want {
		t.Fatalf("RequestOf = %+v, want %+v", got, want)
	}
	if !got.Shared() || got.ShareMemory() != 10*gi {
		t.Errorf("Shared %v, ShareMemory %d", got.Shared(), got.ShareMemory())
	}
	// gpus left out with a share is one shared GPU.
	if got, _ := RequestOf(job("b", 1, 0, func(s *spec.Job) { s.Resources.GPUMilli = 500 })); got.GPUs != 1 || got.GPUMilli != 500 {
		t.Errorf("gpus unset with gpuMilli: %+v", got)
	}
	if _, err := RequestOf(job("c", 1, 1, share(1000, ""))); err == nil {
		t.Error("RequestOf accepted gpuMilli 1000")
	}
}

// placeAll runs Place pass after pass, one job per pass, turning each
// placement into live allocations, as the leader does, and checks every
// pass with Fit.
func placeAll(t *testing.T, nodes []*api.Node, allocs []*api.Allocation, jobs ...*api.Job) (map[string]string, []*api.Allocation) {
	t.Helper()
	out := map[string]string{}
	for _, j := range jobs {
		res := Place(Input{Nodes: nodes, Allocs: allocs, Pending: []*api.Job{j}})
		verifyResult(t, nodes, allocs, res)
		for _, p := range res.Placements {
			out[p.JobID] = asg(p)
			for _, a := range p.Assignments {
				al := p.Request.Allocation(p.JobID+"-"+string(rune('0'+a.Rank)), nodeByID(nodes, a.NodeID), a.GPUs)
				al.JobID, al.NodeID, al.Status = p.JobID, a.NodeID, api.AllocRunning
				allocs = append(allocs, al)
			}
		}
		for id, why := range res.Unplaced {
			out[id] = "pending: " + why
		}
	}
	return out, allocs
}

func TestPlaceShares(t *testing.T) {
	inference := func(s *spec.Job) { s.Kind = spec.KindInference }
	t.Run("two 500m inference replicas spread over nodes", func(t *testing.T) {
		got, _ := placeAll(t, []*api.Node{h200("n1", 1), h200("n2", 1)}, nil, job("serve", 2, 1, share(500, ""), inference))
		if got["serve"] != "0@n1[0] 1@n2[0]" {
			t.Errorf("serve: %s", got["serve"])
		}
	})
	t.Run("two 500m inference replicas share the only GPU", func(t *testing.T) {
		got, allocs := placeAll(t, []*api.Node{h200("n1", 1)}, nil, job("serve", 2, 1, share(500, ""), inference))
		if got["serve"] != "0@n1[0] 1@n1[0]" {
			t.Errorf("serve: %s", got["serve"])
		}
		// The GPU is full now: a third share waits, and says why.
		got, _ = placeAll(t, []*api.Node{h200("n1", 1)}, allocs, job("third", 1, 1, share(100, "")))
		if want := "pending: waiting for resources: 1 replica(s) x 100m of a GPU (0/1 nodes can take a replica now; 1 node has no GPU with 100m free)"; got["third"] != want {
			t.Errorf("third:\n got %s\nwant %s", got["third"], want)
		}
	})
	t.Run("three 300m jobs pack onto one GPU", func(t *testing.T) {
		// With whole-GPU work in the history (the training job on n2), a
		// share that strands part of a fresh GPU costs more than one that
		// fills a started GPU.
		nodes := []*api.Node{h200("n1", 4), h200("n2", 4)}
		train := live("train", "id-n2", 0, 1)
		got, allocs := placeAll(t, nodes, []*api.Allocation{train}, job("a", 1, 1, share(300, "")), job("b", 1, 1, share(300, "")), job("c", 1, 1, share(300, "")))
		if got["a"] != got["b"] || got["b"] != got["c"] || !strings.HasPrefix(got["a"], "0@") {
			t.Errorf("shares spread over GPUs: a %s, b %s, c %s", got["a"], got["b"], got["c"])
		}
		// 100m is left on that GPU: a 200m share goes elsewhere, a 100m
		// one fills it.
		got2, _ := placeAll(t, nodes, allocs, job("d", 1, 1, share(200, "")))
		got3, _ := placeAll(t, nodes, allocs, job("e", 1, 1, share(100, "")))
		if got2["d"] == got["a"] || got3["e"] != got["a"] {
			t.Errorf("d %s, e %s, after three 300m on %s", got2["d"], got3["e"], got["a"])
		}
	})
	t.Run("GPU memory of shares adds up", func(t *testing.T) {
		// 141Gi per GPU: two 60Gi shares fit on one GPU, the third does
		// not, though milli would allow it.
		nodes := []*api.Node{h200("n1", 2)}
		got, _ := placeAll(t, nodes, nil, job("a", 3, 1, share(200, "60Gi")))
		gpus := map[string]int{}
		for _, part := range strings.Fields(got["a"]) {
			gpus[part[strings.Index(part, "["):]]++
		}
		if len(gpus) != 2 || gpus["[0]"] > 2 || gpus["[1]"] > 2 {
			t.Errorf("a: %s", got["a"])
		}
		got, _ = placeAll(t, []*api.Node{h200("n1", 1)}, nil, job("b", 3, 1, share(200, "60Gi")))
		if !strings.HasPrefix(got["b"], "pending: cannot fit on this cluster: 3 replica(s) x 200m of a GPU with 60Gi, but the ready nodes hold only 2 such replicas") {
			t.Errorf("b: %s", got["b"])
		}
	})
	t.Run("a whole GPU is not taken from a shared one", func(t *testing.T) {
		nodes := []*api.Node{h200("n1", 2)}
		allocs := []*api.Allocation{liveShare("s", "id-n1", 0, 100, 0)}
		got, _ := placeAll(t, nodes, allocs, job("w", 1, 1), job("ww", 1, 2))
		if got["w"] != "0@n1[1]" {
			t.Errorf("w: %s", got["w"])
		}
		if !strings.HasPrefix(got["ww"], "pending: waiting for resources: 1 replica(s) x 2 GPU(s) (0/1 nodes can take a replica now; 1 node lacks 2 free GPUs)") {
			t.Errorf("ww: %s", got["ww"])
		}
	})
	t.Run("a share waits with memory in the reason", func(t *testing.T) {
		nodes := []*api.Node{h200("n1", 1)}
		allocs := []*api.Allocation{liveShare("s", "id-n1", 0, 500, 130*gi)}
		got, _ := placeAll(t, nodes, allocs, job("m", 1, 1, share(500, "20Gi")))
		if want := "pending: waiting for resources: 1 replica(s) x 500m of a GPU with 20Gi (0/1 nodes can take a replica now; 1 node has no GPU with 500m and 20Gi free)"; got["m"] != want {
			t.Errorf("m:\n got %s\nwant %s", got["m"], want)
		}
	})
}

// nodeByID finds a node of a test cluster by ID (nil when absent).
func nodeByID(nodes []*api.Node, id string) *api.Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}
