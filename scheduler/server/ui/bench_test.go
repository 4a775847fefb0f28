package ui

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// BenchmarkClusterPage renders the cluster page's fragment for 1,000 nodes
// of 8 GPUs, 6 of 8 held by 2,000 jobs (whole GPUs and halves).
func BenchmarkClusterPage(b *testing.B) {
	v := &View{Index: 1}
	for i := 0; i < 1000; i++ {
		n := gpuNode(fmt.Sprintf("gpu-%04d", i), 8)
		v.Nodes = append(v.Nodes, n)
		whole := &api.Job{ID: fmt.Sprintf("ft-%04d", i), Namespace: "nlp", Queue: fmt.Sprintf("q%d", i%7), Status: api.JobRunning,
			Allocations: []*api.Allocation{alloc("ft", n.Name, 0, []int{0, 1, 2, 3}, 0)}}
		half := &api.Job{ID: fmt.Sprintf("sv-%04d", i), Namespace: "nlp", Queue: "serving", Status: api.JobRunning,
			Allocations: []*api.Allocation{alloc("sv", n.Name, 0, []int{4}, 500), alloc("sv", n.Name, 1, []int{5}, 500)}}
		v.Jobs = append(v.Jobs, whole, half)
	}
	u := New(fixedSource{v: v})
	body, err := u.render(context.Background(), "cluster", v, url.Values{})
	if err != nil {
		b.Fatal(err)
	}
	// Correct before fast: every GPU drawn, the held ones in colour.
	if got := strings.Count(string(body), `class="gpu `); got != 8000 {
		b.Fatalf("drew %d GPU cells, want 8000", got)
	}
	if got := strings.Count(string(body), `class="gpu free"`); got != 2000 {
		b.Fatalf("drew %d free GPUs, want 2000", got)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := u.render(context.Background(), "cluster", v, url.Values{}); err != nil {
			b.Fatal(err)
		}
	}
}
