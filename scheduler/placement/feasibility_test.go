package placement

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// islands builds a ready 8-GPU H200 node of two 4-GPU NVLink domains.
func islands(name, fabric string) *api.Node {
	n := h200(name, 8)
	n.Fabric = fabric
	for i := range n.GPUs {
		dom := i / 4 * 4
		var peers []int
		for k := dom; k < dom+4; k++ {
			if k != i {
				peers = append(peers, k)
			}
		}
		n.GPUs[i].NVLinkDomain, n.GPUs[i].NVLinkPeers, n.GPUs[i].NUMANode = dom, peers, -1
	}
	return n
}

func nvlinkRequired(s *spec.Job) { s.Topology.NVLink = spec.PrefRequired }
func rdmaRequired(s *spec.Job)   { s.Topology.RDMA = spec.PrefRequired }

func racked(n *api.Node, fabric string) *api.Node { n.Fabric = fabric; return n }

// TestRuleReasons: each rule, alone, keeps a job pending with a reason of
// that rule and no other, and the text says it.
func TestRuleReasons(t *testing.T) {
	small := func(cpuMilli, memBytes int64) *api.Node {
		n := h200("n1", 2)
		n.CPUMilli, n.MemoryBytes = cpuMilli, memBytes
		return n
	}
	tests := []struct {
		name   string
		nodes  []*api.Node
		allocs []*api.Allocation
		job    *api.Job
		rule   Rule
		nodesN int    // nodes the rule counts (0: a gang-level reason)
		text   string // substring of the rendered reason
		never  bool   // cannot fit even on the idle cluster
		// also is a per-node rule that counts the busy nodes beside the
		// gang's own rule (RuleNone: none).
		also Rule
	}{
		{"model", []*api.Node{h200("n1", 8)}, nil, job("j", 1, 1, model("B200")),
			RuleModel, 1, "1 node lacks GPUs of model B200", true, RuleNone},
		{"GPU memory", []*api.Node{h200("n1", 8)}, nil, job("j", 1, 1, gpuMem("200Gi")),
			RuleGPUMemory, 1, "1 node lacks GPUs with 200Gi of memory", true, RuleNone},
		{"free GPUs", []*api.Node{h200("n1", 4)}, []*api.Allocation{live("x", "id-n1", 0, 1)}, job("j", 1, 3),
			RuleFreeGPUs, 1, "1 node lacks 3 free GPUs", false, RuleNone},
		{"share milli", []*api.Node{h200("n1", 1)}, []*api.Allocation{liveShare("x", "id-n1", 0, 700, 0)}, job("j", 1, 1, share(400, "")),
			RuleGPUMilli, 1, "1 node has no GPU with 400m free", false, RuleNone},
		{"CPU", []*api.Node{small(4000, 64*gi)}, []*api.Allocation{live("x", "id-n1", 0)}, job("j", 1, 1, cpu("3500m")),
			RuleCPU, 1, "1 node has too little free CPU", false, RuleNone},
		{"memory", []*api.Node{small(64000, 4*gi)}, []*api.Allocation{live("x", "id-n1", 0)}, job("j", 1, 1, mem("3500Mi")),
			RuleMemory, 1, "1 node has too little free memory", false, RuleNone},
		{"NVLink only: free GPUs split over two domains", []*api.Node{islands("n1", "")},
			[]*api.Allocation{live("x", "id-n1", 0, 1), live("y", "id-n1", 4, 5)}, job("j", 1, 4, nvlinkRequired),
			RuleNVLink, 1, "1 node lacks 4 free GPUs in one NVLink domain", false, RuleNone},
		{"NVLink only: a gang's replicas each in one domain", []*api.Node{islands("n1", ""), islands("n2", "")},
			[]*api.Allocation{live("x", "id-n1", 0, 1, 4, 5), live("y", "id-n2", 0, 1, 4, 5)}, job("j", 2, 3, nvlinkRequired),
			RuleNVLink, 2, "2 nodes lack 3 free GPUs in one NVLink domain", false, RuleNone},
		{"NVLink only: sameNode gang", []*api.Node{islands("n1", "")},
			[]*api.Allocation{live("x", "id-n1", 0, 1, 2, 4)}, job("j", 2, 2, nvlinkRequired, sameNode),
			RuleNVLink, 1, "1 node lacks 2 free GPUs in one NVLink domain for each of the 2 replicas", false, RuleNone},
		{"fabric only: busy", []*api.Node{racked(h200("a", 8), "rack-1"), racked(h200("b", 8), "rack-1"), racked(h200("c", 8), "rack-2")},
			[]*api.Allocation{live("x", "id-b", 0)}, job("j", 2, 8, rdmaRequired),
			RuleFabric, 0, "no fabric holds all 2 replicas now (topology.rdma: required), one holds at most 1", false, RuleFreeGPUs},
		{"fabric only: never", []*api.Node{racked(h200("a", 8), "rack-1"), racked(h200("c", 8), "rack-2")}, nil, job("j", 2, 8, rdmaRequired),
			RuleFabric, 0, "in one fabric (topology.rdma: required), but one fabric holds at most 1 such replicas even when idle", true, RuleNone},
		{"sameNode", []*api.Node{h200("a", 4), h200("b", 4)}, []*api.Allocation{live("x", "id-a", 0), live("y", "id-b", 0)}, job("j", 2, 2, sameNode),
			RuleSameNode, 2, "2 nodes lack room for all 2 replicas (sameNode)", false, RuleNone},
		{"replicas", []*api.Node{h200("a", 4), h200("b", 4)}, []*api.Allocation{live("x", "id-a", 0), live("y", "id-b", 0)}, job("j", 3, 2),
			RuleReplicas, 0, "the nodes with room hold only 2 of 3 replicas now", false, RuleNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Place(Input{Nodes: tt.nodes, Allocs: tt.allocs, Pending: []*api.Job{tt.job}})
			if len(res.Placements) != 0 {
				t.Fatalf("placed %s, want pending", asg(res.Placements[0]))
			}
			why, ok := res.Why["j"]
			if !ok {
				t.Fatalf("no Why for the pending job (Unplaced %q)", res.Unplaced["j"])
			}
			var own []Reason
			for _, r := range why.Reasons {
				if tt.also == RuleNone || r.Rule != tt.also {
					own = append(own, r)
				}
			}
			if len(own) != 1 || own[0].Rule != tt.rule || own[0].Nodes != tt.nodesN {
				t.Errorf("reasons %+v, want one of rule %s on %d node(s) (besides %s)", why.Reasons, tt.rule, tt.nodesN, tt.also)
			}
			text := res.Unplaced["j"]
			if text != why.Text() {
				t.Errorf("Unplaced %q is not Why's text %q", text, why.Text())
			}
			if !strings.Contains(text, tt.text) {
				t.Errorf("reason %q does not say %q", text, tt.text)
			}
			if why.Never != tt.never || strings.HasPrefix(text, "cannot fit on this cluster") != tt.never {
				t.Errorf("never = %v (%q), want %v", why.Never, text, tt.never)
			}
		})
	}
}

// TestTopologyPreferredPlaces: without "required", the jobs the NVLink and
// fabric cases above refuse are placed, so those refusals are the rules'.
func TestTopologyPreferredPlaces(t *testing.T) {
	res := Place(Input{Nodes: []*api.Node{islands("n1", "")}, Allocs: []*api.Allocation{live("x", "id-n1", 0, 1), live("y", "id-n1", 4, 5)},
		Pending: []*api.Job{job("j", 1, 4)}})
	if len(res.Placements) != 1 {
		t.Errorf("NVLink preferred: not placed: %v", res.Unplaced)
	}
	res = Place(Input{Nodes: []*api.Node{racked(h200("a", 8), "rack-1"), racked(h200("c", 8), "rack-2")}, Pending: []*api.Job{job("j", 2, 8)}})
	if len(res.Placements) != 1 {
		t.Errorf("RDMA preferred: not placed: %v", res.Unplaced)
	}
	// Required, with room in one domain per replica: placed, each replica
	// inside one domain.
	res = Place(Input{Nodes: []*api.Node{islands("n1", "")}, Allocs: []*api.Allocation{live("x", "id-n1", 0, 1)},
		Pending: []*api.Job{job("j", 2, 2, nvlinkRequired, sameNode)}})
	if len(res.Placements) != 1 {
		t.Fatalf("NVLink required, room in each domain: not placed: %v", res.Unplaced)
	}
	for _, a := range res.Placements[0].Assignments {
		if a.GPUs[0]/4 != a.GPUs[len(a.GPUs)-1]/4 {
			t.Errorf("rank %d GPUs %v cross NVLink domains", a.Rank, a.GPUs)
		}
	}
}

// TestExplanationText: the one render, with job-level reasons after the
// node counts and a quota-only explanation as its reason alone.
func TestExplanationText(t *testing.T) {
	e := Explanation{Summary: "waiting for resources: 1 replica(s) x 8 GPU(s)", Fit: 0, Nodes: 4}
	e.Add(Reason{Rule: RuleNotReady, Nodes: 1, Detail: "are not ready"})
	e.Add(Reason{Rule: RuleFreeGPUs, Nodes: 2, Detail: "lack 8 free GPUs"})
	e.Add(Reason{Rule: RuleFreeGPUs, Nodes: 1, Detail: "lack 8 free GPUs"})
	e.Add(Reason{Rule: RuleHeld, Detail: "node(s) n1 held for job big for about 10m"})
	want := "waiting for resources: 1 replica(s) x 8 GPU(s) (0/4 nodes can take a replica now; 3 nodes lack 8 free GPUs, 1 node is not ready); node(s) n1 held for job big for about 10m"
	if got := e.Text(); got != want {
		t.Errorf("Text\n got %q\nwant %q", got, want)
	}
	if e.Count(RuleFreeGPUs) != 3 || len(e.Reasons) != 3 {
		t.Errorf("free GPUs counted %d in %d reasons, want 3 in one reason (3 in all)", e.Count(RuleFreeGPUs), len(e.Reasons))
	}
	q := Explain(Reason{Rule: RuleQuota, Detail: "waiting for quota: queue research at quota 64/64 GPUs"})
	if got := q.Text(); got != "waiting for quota: queue research at quota 64/64 GPUs" {
		t.Errorf("quota text %q", got)
	}
	// Add never changes a copy's reasons.
	c := e
	c.Add(Reason{Rule: RuleFreeGPUs, Nodes: 5, Detail: "lack 8 free GPUs"})
	if e.Count(RuleFreeGPUs) != 3 {
		t.Errorf("Add on a copy changed the original: %d", e.Count(RuleFreeGPUs))
	}
}

// TestReasonJSON: a rule is its stable name on the wire, both ways.
func TestReasonJSON(t *testing.T) {
	b, err := json.Marshal(Reason{Rule: RuleNVLink, Nodes: 3, Detail: "lack 4 free GPUs in one NVLink domain"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"rule":"nvlink","nodes":3,"detail":"lack 4 free GPUs in one NVLink domain"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	for r := RuleNone; r < numRules; r++ {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("rule %d: %v", int(r), err)
		}
		var back Rule
		if err := json.Unmarshal(b, &back); err != nil || back != r {
			t.Errorf("rule %s: round trip gave %v, %v", r, back, err)
		}
	}
	var r Rule
	if err := json.Unmarshal([]byte(`"bogus"`), &r); err == nil {
		t.Error("an unknown rule name was accepted")
	}
}

// TestPropertyFeasibilityAgrees: on random small clusters, for every node
// and a random request, the planner's check (NodeState.Check on the job's
// view), the explanation and Fit agree: Check passes exactly when some
// allocation of the request's shape on that node passes Fit, and the
// explanation of that node alone counts it under Check's rule.
func TestPropertyFeasibilityAgrees(t *testing.T) {
	models := []string{"NVIDIA H200 141GB HBM3e", "NVIDIA A100-SXM4-80GB"}
	seen := map[Rule]int{}
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 7))
		var nodes []*api.Node
		var allocs []*api.Allocation
		for i := 0; i < 1+rng.IntN(4); i++ {
			n := node(fmt.Sprintf("n%d", i), rng.IntN(5), models[rng.IntN(2)], int64(40+rng.IntN(120)))
			n.CPUMilli, n.MemoryBytes = int64(1+rng.IntN(4))*1000, int64(1+rng.IntN(4))*gi
			if rng.IntN(6) == 0 {
				n.Status = api.NodeDown
			}
			for g := range n.GPUs {
				switch rng.IntN(4) {
				case 0:
					allocs = append(allocs, live(fmt.Sprintf("w%d-%d", i, g), n.ID, g))
				case 1:
					allocs = append(allocs, liveShare(fmt.Sprintf("s%d-%d", i, g), n.ID, g, int64(100*(1+rng.IntN(9))), int64(rng.IntN(80))*gi))
				}
			}
			nodes = append(nodes, n)
		}
		req := Request{GPUs: rng.IntN(4), CPUMilli: int64(rng.IntN(3)) * 500, MemoryBytes: int64(rng.IntN(3)) * gi / 2}
		switch rng.IntN(4) {
		case 0:
			req.GPUs, req.GPUMilli = 1, int64(100*(1+rng.IntN(9)))
			if rng.IntN(2) == 0 {
				req.GPUMemoryBytes = int64(rng.IntN(60)) * gi
			}
		case 1:
			req.GPUModel = []string{"H200", "A100", "B200", "H100,A100"}[rng.IntN(4)]
		case 2:
			req.GPUMemoryBytes = int64(rng.IntN(160)) * gi
		}
		usage := NodeUsage(allocs)
		states, _ := jobStates(nodes, usage, req)
		tk := taskOf(req)
		for i, n := range nodes {
			rule := states[i].Check(tk)
			seen[rule]++
			fits := anyAllocFits(n, usage[n.ID], req)
			if fits != (rule == RuleNone) {
				t.Errorf("seed %d node %s req %+v: Check = %s, but some allocation passes Fit: %v", seed, n.Name, req, rule, fits)
				return false
			}
			e := explainGang([]*api.Node{n}, usage, Gang{Replicas: 1, Task: tk}, req)
			if (e.Fit == 1) != (rule == RuleNone) || (rule != RuleNone && e.Count(rule) != 1) {
				t.Errorf("seed %d node %s req %+v: Check = %s, explanation %+v", seed, n.Name, req, rule, e)
				return false
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 500}); err != nil {
		t.Error(err)
	}
	// The clusters must exercise the rules, not just pass or fail alike.
	for _, r := range []Rule{RuleNone, RuleNotReady, RuleModel, RuleGPUMemory, RuleGPUTotal, RuleFreeGPUs, RuleGPUMilli, RuleCPU, RuleMemory} {
		if seen[r] == 0 {
			t.Errorf("no node of the random clusters hit rule %s (seen %v)", r, seen)
		}
	}
}

// anyAllocFits reports whether some set of req.GPUs GPU indexes of the
// node, as an allocation of req, passes Fit.
func anyAllocFits(n *api.Node, used *Usage, req Request) bool {
	var try func(from int, picked []int) bool
	try = func(from int, picked []int) bool {
		if len(picked) == req.GPUs {
			a := req.Allocation("new", n, append([]int(nil), picked...))
			a.NodeID = n.ID
			return Fit(n, used, a, req) == nil
		}
		for g := from; g < len(n.GPUs); g++ {
			if try(g+1, append(picked, g)) {
				return true
			}
		}
		return false
	}
	return try(0, nil)
}
