package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

func TestEventLine(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ev   api.JobEvent
		want string
	}{
		{api.JobEvent{Time: now.Add(-30 * time.Second), Type: api.EventStarted, Message: "all 2 ranks running"}, "30s\tstarted\tall 2 ranks running"},
		{api.JobEvent{Time: now.Add(-3 * time.Hour), Type: api.EventPreempted, Message: "preempted by job x"}, "3h\tpreempted\tpreempted by job x"},
		{api.JobEvent{Time: now.Add(5 * time.Second), Type: api.EventPlaced, Message: "placed rank 0 on n1"}, "0s\tplaced\tplaced rank 0 on n1"}, // a server clock ahead
		{api.JobEvent{Type: api.EventSubmitted, Message: "submitted"}, "-\tsubmitted\tsubmitted"},                                                // no time (an old entry)
	} {
		if got := eventLine(tc.ev, now); got != tc.want {
			t.Errorf("eventLine(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

// TestPrintEvents: ark job status shows the newest statusEvents events,
// oldest first, and says how many it left out.
func TestPrintEvents(t *testing.T) {
	t.Parallel()
	now := time.Now()
	j := &api.Job{}
	var b bytes.Buffer
	printEvents(&b, j, now)
	if b.Len() != 0 {
		t.Fatalf("a job without events printed %q", b.String())
	}
	for i := range 12 {
		j.Events = append(j.Events, api.JobEvent{Time: now, Type: api.EventCheckpoint, Message: fmt.Sprintf("event %d", i)})
	}
	printEvents(&b, j, now)
	out := b.String()
	if !strings.Contains(out, "Events (last 8 of 12; -o json for all)") || strings.Contains(out, "event 3\n") || !strings.Contains(out, "event 4") ||
		strings.Index(out, "event 4") > strings.Index(out, "event 11") {
		t.Errorf("printed:\n%s", out)
	}
}
