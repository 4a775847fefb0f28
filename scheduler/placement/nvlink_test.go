package placement

import (
	"reflect"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// TestPlaceUsesNVLinkDomains: the NVLink domains the agent reports (two
// 4-GPU islands, NUMA unknown) keep a 4-GPU replica inside one island.
func TestPlaceUsesNVLinkDomains(t *testing.T) {
	n := &api.Node{ID: "n1", Name: "n1", Status: api.NodeReady, CPUMilli: 64000, MemoryBytes: 512 << 30}
	for i := 0; i < 8; i++ {
		dom := 0
		if i >= 4 {
			dom = 4
		}
		var peers []int
		for k := dom; k < dom+4; k++ {
			if k != i {
				peers = append(peers, k)
			}
		}
		n.GPUs = append(n.GPUs, api.GPU{Index: i, Model: "NVIDIA H200", MemoryBytes: 141 << 30, NUMANode: -1, NVLinkDomain: dom, NVLinkPeers: peers})
	}
	busy := &api.Allocation{ID: "x", NodeID: "n1", GPUs: []int{1}, Status: api.AllocRunning}
	job := &api.Job{ID: "a", Spec: spec.Job{Name: "a", Kind: spec.KindFinetune, Replicas: 1,
		Resources: spec.Resources{GPUs: 4, CPU: "1", Memory: "1Gi"}, Topology: spec.Topology{NVLink: spec.PrefPreferred}}}
	res := Place(Input{Nodes: []*api.Node{n}, Allocs: []*api.Allocation{busy}, Pending: []*api.Job{job}})
	if len(res.Placements) != 1 {
		t.Fatalf("not placed: %v", res.Unplaced)
	}
	if got := res.Placements[0].Assignments[0].GPUs; !reflect.DeepEqual(got, []int{4, 5, 6, 7}) {
		t.Errorf("GPUs %v, want one whole NVLink island [4 5 6 7]", got)
	}
}
