package main

import (
	"slices"
	"testing"
)

func TestShardCandidates(t *testing.T) {
	c := []string{"a", "b", "c", "d", "e"}
	for _, tc := range []struct {
		rank, world int
		want        []string
	}{
		{0, 1, c},
		{0, 2, []string{"a", "c", "e"}},
		{1, 2, []string{"b", "d"}},
		{4, 5, []string{"e"}},
		{5, 6, nil}, // more ranks than candidates: nothing to do
		{3, 2, c},   // not a rank of this world: everything, as a lone task
	} {
		if got := shardCandidates(c, tc.rank, tc.world); !slices.Equal(got, tc.want) {
			t.Errorf("rank %d of %d: %v, want %v", tc.rank, tc.world, got, tc.want)
		}
	}
}
