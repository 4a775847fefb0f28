package state

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestAddEvent: a job keeps its last api.MaxJobEvents events, a checkpoint
// replaces the checkpoint just before it, a long message is cut, and the
// stored job's list is never written through a copy's.
func TestAddEvent(t *testing.T) {
	stored := api.Job{ID: "j"}
	for i := range api.MaxJobEvents + 10 {
		addEvent(&stored, uint64(i+1), t0.Add(time.Duration(i)*time.Second), api.EventReplica, fmt.Sprint(i))
	}
	if n := len(stored.Events); n != api.MaxJobEvents {
		t.Fatalf("%d events, want %d", n, api.MaxJobEvents)
	}
	if first := stored.Events[0]; first.Message != "10" || first.Index != 11 {
		t.Fatalf("oldest kept event %+v, want the 11th", first)
	}
	// Two copies of the stored job each add an event: neither sees the
	// other's, and the stored job sees none.
	stored.Events = append(make([]api.JobEvent, 0, 100), stored.Events...) // spare capacity, as append leaves it
	a, b := stored, stored
	addEvent(&a, 100, t0, api.EventScaled, "a")
	addEvent(&b, 101, t0, api.EventScaled, "b")
	if last := a.Events[len(a.Events)-1]; last.Message != "a" {
		t.Errorf("copy a's last event %+v, want a", last)
	}
	if last := stored.Events[len(stored.Events)-1]; last.Type != api.EventReplica {
		t.Errorf("the stored job's list changed through a copy: %+v", last)
	}
	// Checkpoints coalesce; anything between them keeps both.
	j := api.Job{}
	addEvent(&j, 1, t0, api.EventCheckpoint, "step 50")
	addEvent(&j, 2, t0, api.EventCheckpoint, "step 100")
	addEvent(&j, 3, t0, api.EventRestarting, "rank 1 failed")
	addEvent(&j, 4, t0, api.EventCheckpoint, "step 150")
	var got []string
	for _, e := range j.Events {
		got = append(got, e.Message)
	}
	if strings.Join(got, "|") != "step 100|rank 1 failed|step 150" {
		t.Errorf("events %q", got)
	}
	addEvent(&j, 5, t0, api.EventFailed, strings.Repeat("x", 5000))
	if m := j.Events[len(j.Events)-1].Message; len(m) != maxEventMessage || !strings.HasSuffix(m, "...") {
		t.Errorf("a 5000-byte message kept as %d bytes", len(m))
	}
}

func TestPlacedMessage(t *testing.T) {
	al := func(node string, rank int) *api.Allocation { return &api.Allocation{Node: node, Rank: rank} }
	for _, tc := range []struct {
		allocs  []*api.Allocation
		service bool
		want    string
	}{
		{[]*api.Allocation{al("n1", 0)}, false, "rank 0 on n1"},
		{[]*api.Allocation{al("n1", 0), al("n1", 1), al("n2", 2)}, false, "ranks 0-1 on n1, rank 2 on n2"},
		{[]*api.Allocation{al("n2", 3), al("n1", 0), al("n2", 1), al("n2", 2), al("n1", 5)}, false, "ranks 1-3 on n2, ranks 0,5 on n1"},
		{[]*api.Allocation{al("n1", 2)}, true, "replica 2 on n1"},
		{[]*api.Allocation{{NodeID: "id-9", Rank: 0}}, false, "rank 0 on id-9"},
	} {
		if got := placedMessage(tc.allocs, tc.service); got != tc.want {
			t.Errorf("placedMessage = %q, want %q", got, tc.want)
		}
	}
}

// TestSnapshotEvents: events survive a snapshot, and a version 5 snapshot
// (jobs without events) still loads.
func TestSnapshotEvents(t *testing.T) {
	h := populated(t)
	g := h.job("g")
	if len(g.Events) < 3 {
		t.Fatalf("populated gang has events %+v, want submitted, placed, ...", g.Events)
	}
	snap := persist(t, h.fsm)
	restored := NewFSM(zaptest.NewLogger(t))
	if err := restored.Restore(readCloser(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := restored.Store().Snapshot().Job(nil, "g").Events; fmt.Sprint(got) != fmt.Sprint(g.Events) {
		t.Fatalf("restored events %+v, want %+v", got, g.Events)
	}
	v5 := strings.Replace(snap.String(), fmt.Sprintf(`"version":%d`, SnapshotVersion), `"version":5`, 1)
	old := NewFSM(zaptest.NewLogger(t))
	if err := old.Restore(readCloser([]byte(v5))); err != nil {
		t.Fatalf("restore a version 5 snapshot: %v", err)
	}
}
