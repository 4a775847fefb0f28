package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestHolders: a reason about contested GPUs names the jobs holding the
// GPUs the pending job could use on the nodes it rejected (sorted, each
// once); GPUs of a model the job does not take, and other rules, name none.
func TestHolders(t *testing.T) {
	b200 := h200("b1", 4)
	for i := range b200.GPUs {
		b200.GPUs[i].Model = "NVIDIA B200"
	}
	tests := []struct {
		name   string
		nodes  []*api.Node
		allocs []*api.Allocation
		job    *api.Job
		rule   Rule
		want   []string
	}{
		{"one node, two holders", []*api.Node{h200("n1", 4)},
			[]*api.Allocation{live("x", "id-n1", 0, 1), live("y", "id-n1", 2)}, job("j", 1, 2),
			RuleFreeGPUs, []string{"job-x", "job-y"}},
		{"two nodes merge, sorted", []*api.Node{h200("n1", 2), h200("n2", 2)},
			[]*api.Allocation{live("z", "id-n1", 0), live("a", "id-n2", 1), live("z2", "id-n2", 0)}, job("j", 1, 2),
			RuleFreeGPUs, []string{"job-a", "job-z", "job-z2"}},
		{"a share's room", []*api.Node{h200("n1", 1)},
			[]*api.Allocation{liveShare("s", "id-n1", 0, 700, 0)}, job("j", 1, 1, share(400, "")),
			RuleGPUMilli, []string{"job-s"}},
		{"GPUs of another model hold nothing it waits for", []*api.Node{h200("n1", 2), b200},
			[]*api.Allocation{live("x", "id-n1", 0), live("b", "id-b1", 0, 1, 2, 3)}, job("j", 1, 2, model("H200")),
			RuleFreeGPUs, []string{"job-x"}},
		{"CPU names none", []*api.Node{h200("n1", 2)},
			[]*api.Allocation{live("x", "id-n1", 0)}, job("j", 1, 1, cpu("64")),
			RuleCPU, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Place(Input{Nodes: tt.nodes, Allocs: tt.allocs, Pending: []*api.Job{tt.job}})
			why, ok := res.Why["j"]
			if !ok {
				t.Fatalf("j was not left pending (%d placements)", len(res.Placements))
			}
			found := false
			for _, r := range why.Reasons {
				if r.Rule == tt.rule {
					found = true
					if !slices.Equal(r.Holders, tt.want) {
						t.Errorf("%s holders %q, want %q", r.Rule, r.Holders, tt.want)
					}
				}
			}
			if !found {
				t.Fatalf("no %s reason in %+v", tt.rule, why.Reasons)
			}
		})
	}
}

// TestFirstHolders: a reason names the smallest api.MaxReasonHolders
// holders, sorted, and counts the rest; merging two reasons keeps that.
func TestFirstHolders(t *testing.T) {
	set := func(n int) map[string]bool {
		m := map[string]bool{}
		for i := range n {
			m[fmt.Sprintf("j%03d", (i*37)%n)] = true
		}
		return m
	}
	ids := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("j%03d", i))
		}
		return out
	}
	for _, tt := range []struct {
		n, more int
		want    []string
	}{
		{0, 0, nil},
		{3, 0, ids(0, 3)},
		{api.MaxReasonHolders, 0, ids(0, api.MaxReasonHolders)},
		{api.MaxReasonHolders + 1, 1, ids(0, api.MaxReasonHolders)},
		{500, 500 - api.MaxReasonHolders, ids(0, api.MaxReasonHolders)},
	} {
		got, more := firstHolders(set(tt.n))
		if !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("%d holders: got %q +%d, want %q +%d", tt.n, got, more, tt.want, tt.more)
		}
	}
	a, b := ids(0, 16), ids(8, 24)
	got, more := mergeHolders(a, b, 5)
	if !slices.Equal(got, ids(0, 16)) || more != 5+8 {
		t.Errorf("merge: got %q +%d, want %q +13", got, more, ids(0, 16))
	}
	if got, more := mergeHolders(ids(0, 2), nil, 1); !slices.Equal(got, ids(0, 2)) || more != 1 {
		t.Errorf("merge with nothing: got %q +%d", got, more)
	}
}
