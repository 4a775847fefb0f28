package collective

import (
	"slices"
	"testing"
)

// TestLinkNames: a peer whose channels ended on different transports (some
// fell back from rdma to tcp) reads "rdma+tcp"; peers without conns keep
// the transport picked for them.
func TestLinkNames(t *testing.T) {
	picked := []string{"rdma", "rdma", "shm", "rdma"}
	need := [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}}
	used := []string{"rdma", "tcp", "tcp", "tcp", "shm"}
	got := linkNames(picked, need, used)
	if want := []string{"rdma+tcp", "tcp", "shm", "rdma"}; !slices.Equal(got, want) {
		t.Fatalf("linkNames = %v, want %v", got, want)
	}
}
