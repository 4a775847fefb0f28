package state

import (
	"slices"
	"testing"
)

// TestNodesByName: Nodes lists the nodes in Go's string order of their
// names, which the name index's keys (the bytes and a NUL) give without a
// sort: a prefix first, upper case before lower, digits as bytes.
func TestNodesByName(t *testing.T) {
	h := newHarness(t)
	names := []string{"gpu-b", "gpu-a-1", "gpu-a", "GPU-Z", "gpu-10", "gpu-9", "gpu-a0"}
	for _, n := range names {
		h.addNode(n, 1)
	}
	var got []string
	for _, n := range h.snap().Nodes(nil) {
		got = append(got, n.Name)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
}
