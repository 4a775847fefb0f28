package placement

import (
	"math"
	"testing"
)

func TestReserveAndBackfill(t *testing.T) {
	// Three 4-GPU nodes: n0 is busy until 100 s, n1 until 300 s, n2 runs
	// a job with no declared end. The head gang needs two whole nodes.
	nodes := []*NodeState{ns("H100", 64000, 1000, 0, 0, 0, 0), ns("H100", 64000, 1000, 0, 0, 1000, 1000), ns("H100", 64000, 1000, 0, 1000, 1000, 1000)}
	for i, n := range nodes {
		n.Order = i
	}
	ending := []Ending{
		{Node: 0, GPUs: []int{0, 1, 2, 3}, EndsAt: 100},
		{Node: 1, GPUs: []int{0, 1}, EndsAt: 300},
		{Node: 2, GPUs: []int{0}, EndsAt: math.Inf(1)},
	}
	head := Gang{Replicas: 2, Task: Task{GPUs: 4, GPUMilli: 1000}}
	r, ok := Reserve(nodes, ending, head, FirstFitPolicy{})
	if !ok || r.At != 300 || !r.Nodes[0] || !r.Nodes[1] || r.Nodes[2] {
		t.Fatalf("Reserve = %+v, %v; want at 300 on nodes 0 and 1", r, ok)
	}
	if nodes[0].FreeMilli() != 0 {
		t.Fatal("Reserve changed the nodes it was given")
	}
	onReserved := []Slot{{Node: 1, GPUs: []int{2}}}
	onFree := []Slot{{Node: 2, GPUs: []int{1}}}
	tests := []struct {
		name    string
		slots   []Slot
		runtime float64
		want    bool
	}{
		{"short job on a reserved node ends in time", onReserved, 250, true},
		{"long job on a reserved node would delay the gang", onReserved, 400, false},
		{"no declared runtime on a reserved node", onReserved, 0, false},
		{"any job off the reserved nodes", onFree, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanBackfill(r, tt.slots, tt.runtime); got != tt.want {
				t.Errorf("CanBackfill = %v, want %v", got, tt.want)
			}
		})
	}
	// A gang that fits now reserves at 0; one too big never fits.
	if r, ok := Reserve(nodes, ending, Gang{Replicas: 1, Task: Task{GPUs: 2, GPUMilli: 1000}}, FirstFitPolicy{}); !ok || r.At != 0 {
		t.Errorf("fitting gang: %+v, %v", r, ok)
	}
	if _, ok := Reserve(nodes, ending, Gang{Replicas: 3, Task: Task{GPUs: 4, GPUMilli: 1000}}, FirstFitPolicy{}); ok {
		t.Error("a gang that needs the never-ending node's GPUs got a reservation")
	}
}
