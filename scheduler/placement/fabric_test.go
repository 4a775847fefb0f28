package placement

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestPlaceGangPrefersOneFabric: the fabric label agents report (ark agent
// --fabric) keeps a multi-node gang inside one rack or leaf switch when
// one has room, even past nodes that come first by name.
func TestPlaceGangPrefersOneFabric(t *testing.T) {
	fab := func(n *api.Node, f string) *api.Node { n.Fabric = f; return n }
	tests := []struct {
		name  string
		nodes []*api.Node
		want  string
	}{
		{"one fabric has two free nodes",
			[]*api.Node{fab(h200("a", 8), "rack-1"), fab(h200("b", 8), "rack-2"), fab(h200("c", 8), "rack-1")},
			"0@a[0 1 2 3 4 5 6 7] 1@c[0 1 2 3 4 5 6 7]"},
		{"no fabric has room: any two nodes",
			[]*api.Node{fab(h200("a", 8), "rack-1"), fab(h200("b", 8), "rack-2")},
			"0@a[0 1 2 3 4 5 6 7] 1@b[0 1 2 3 4 5 6 7]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Place(Input{Nodes: tt.nodes, Pending: []*api.Job{job("g", 2, 8)}})
			if len(res.Placements) != 1 {
				t.Fatalf("not placed: %v", res.Unplaced)
			}
			if got := asg(res.Placements[0]); got != tt.want {
				t.Errorf("placed %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPlaceModelAlternatives: gpuModel "H100,H200" accepts either model.
func TestPlaceModelAlternatives(t *testing.T) {
	nodes := []*api.Node{node("a", 8, "NVIDIA A100-SXM4-80GB", 80), h200("h", 8)}
	res := Place(Input{Nodes: nodes, Pending: []*api.Job{
		job("either", 1, 8, model("H100,H200")),
		job("none", 1, 1, model("H100, L40S")),
		job("spaced", 1, 4, model(" B200 , A100 ")),
	}})
	got := map[string]string{}
	for _, p := range res.Placements {
		got[p.JobID] = asg(p)
	}
	if got["either"] != "0@h[0 1 2 3 4 5 6 7]" || got["spaced"] != "0@a[0 1 2 3]" {
		t.Errorf("placed %v", got)
	}
	if why := res.Unplaced["none"]; !strings.Contains(why, "of model H100 or L40S") {
		t.Errorf("reason %q", why)
	}
	u := Fit(nodes[0], nil, &api.Allocation{ID: "x", GPUs: []int{0}, CPUMilli: 1000, MemoryBytes: gi}, Request{GPUs: 1, GPUModel: "H100,H200", CPUMilli: 1000, MemoryBytes: gi})
	if u == nil || !strings.Contains(u.Error(), `is not "H100" or "H200"`) {
		t.Errorf("Fit = %v", u)
	}
}
