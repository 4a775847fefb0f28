package placement

import (
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
