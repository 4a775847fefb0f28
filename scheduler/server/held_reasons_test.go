package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// reasonsFSM is a real state machine that a test writes commands to in
// order.
type reasonsFSM struct {
	t     *testing.T
	fsm   *state.FSM
	index uint64
}

func (f *reasonsFSM) apply(mt state.MessageType, req any) {
	f.t.Helper()
	data, err := state.Encode(mt, req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.index++
	if err, ok := f.fsm.ApplyEntry(f.index, data).(error); ok {
		f.t.Fatalf("apply %s: %v", mt, err)
	}
}

func (f *reasonsFSM) register(id string) {
	f.apply(state.RegisterJobType, &state.RegisterJobRequest{Job: &api.Job{ID: id, Name: id, Namespace: "default", Queue: "default", Status: api.JobPending}})
}

// reason writes a reason into the job, as a plan did before reasons were
// kept apart; keep keeps one beside it, as the loop does now.
func (f *reasonsFSM) reason(id, text string) {
	f.apply(state.ApplyPlanType, &state.ApplyPlanRequest{Plan: state.Plan{Pending: []state.PendingReason{{JobID: id, Reason: text}}}})
}

func (f *reasonsFSM) keep(id, text string) {
	f.apply(state.PendingReasonsType, &state.PendingReasonsRequest{Reasons: []state.PendingReason{{JobID: id, Reason: text}}})
}

// TestHeldReasonsTake: which held reasons are still worth a write when
// they are committed, against the state at that moment.
func TestHeldReasonsTake(t *testing.T) {
	noNodes := "no ready node"
	tests := []struct {
		name string
		// before runs before the pass finds the reason, after between
		// the pass and the commit.
		before, after func(f *reasonsFSM)
		want          []string // job IDs whose reasons are written
	}{
		{name: "a new job's first reason", want: []string{"j"}},
		{name: "a kept reason meanwhile is no write of the job", after: func(f *reasonsFSM) { f.keep("j", "quota") }, want: []string{"j"}},
		{name: "cancelled meanwhile", after: func(f *reasonsFSM) {
			f.apply(state.CancelJobType, &state.CancelJobRequest{JobID: "j", Reason: "by user"})
		}},
		{name: "written meanwhile: the next pass that sees it decides", after: func(f *reasonsFSM) { f.reason("j", "quota") }},
		{name: "already has that reason (in the job)", before: func(f *reasonsFSM) { f.reason("j", noNodes) }},
		{name: "already has that reason (kept)", before: func(f *reasonsFSM) { f.keep("j", noNodes) }},
		{name: "a changed reason", before: func(f *reasonsFSM) { f.keep("j", "quota") }, want: []string{"j"}},
		{name: "gone", after: func(f *reasonsFSM) {
			f.apply(state.CancelJobType, &state.CancelJobRequest{JobID: "j", Reason: "by user", Time: time.Unix(1, 0)})
			f.apply(state.GCJobsType, &state.GCJobsRequest{JobIDs: []string{"j"}, Before: time.Unix(2, 0)})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &reasonsFSM{t: t, fsm: state.NewFSM(zaptest.NewLogger(t))}
			f.register("j")
			if tc.before != nil {
				tc.before(f)
			}
			var h heldReasons
			h.hold(f.fsm.Store().Snapshot(), []state.PendingReason{{JobID: "j", Reason: noNodes}}, time.Now())
			if tc.after != nil {
				tc.after(f)
			}
			var got []string
			for _, pr := range h.take(f.fsm.Store().Snapshot()) {
				got = append(got, pr.JobID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("written %v, want %v", got, tc.want)
			}
			if again := h.take(f.fsm.Store().Snapshot()); len(again) != 0 || !h.due().IsZero() {
				t.Errorf("take forgets what it returned: %v held, due %v", again, h.due())
			}
		})
	}
}

// TestHeldReasonsDue: reasons are due reasonDelay after the oldest was
// found, whatever came after it; a newer reason for a job replaces the
// held one.
func TestHeldReasonsDue(t *testing.T) {
	f := &reasonsFSM{t: t, fsm: state.NewFSM(zaptest.NewLogger(t))}
	f.register("a")
	f.register("b")
	var h heldReasons
	if !h.due().IsZero() {
		t.Fatalf("nothing held, due %v", h.due())
	}
	t0 := time.Unix(1000, 0)
	snap := f.fsm.Store().Snapshot()
	h.hold(snap, nil, t0)
	if !h.due().IsZero() {
		t.Fatalf("an empty pass holds nothing, due %v", h.due())
	}
	h.hold(snap, []state.PendingReason{{JobID: "a", Reason: "first"}}, t0)
	h.hold(snap, []state.PendingReason{{JobID: "a", Reason: "second"}, {JobID: "b", Reason: "b's"}}, t0.Add(100*time.Millisecond))
	if want := t0.Add(reasonDelay); !h.due().Equal(want) {
		t.Errorf("due %v, want %v (the oldest's time plus reasonDelay)", h.due(), want)
	}
	got := h.take(snap)
	want := []state.PendingReason{{JobID: "a", Reason: "second"}, {JobID: "b", Reason: "b's"}}
	if len(got) != len(want) || got[0].Reason != want[0].Reason || got[1].JobID != want[1].JobID {
		t.Errorf("took %+v, want %+v", got, want)
	}
}

// TestWaitingSubmissionsShareReasonEntries: jobs submitted one at a time
// that simply wait get their reasons in a few shared entries, at most one
// per reasonDelay, not one entry each, and the reasons are kept beside the
// jobs: no job is written again.
func TestWaitingSubmissionsShareReasonEntries(t *testing.T) {
	srv, c := testServer(t, "")
	ctx := context.Background()
	if _, err := c.RegisterNode(ctx, fakeNode("a", 4)); err != nil {
		t.Fatal(err)
	}
	const jobs = 20
	var ids []string
	first := srv.raft.LastIndex()
	start := time.Now()
	for i := 0; i < jobs; i++ {
		resp, err := c.SubmitJob(ctx, []byte(`{"name":"huge","kind":"batch","resources":{"gpus":64},"task":{"driver":"exec","exec":{"command":["true"]}}}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.ID)
	}
	submitting := time.Since(start)
	waitFor(t, 5*time.Second, "every job's reason", func() bool {
		for _, id := range ids {
			j, _, err := c.Job(ctx, id, 0, 0)
			if err != nil || j.Reason == "" {
				return false
			}
			if j.Status != api.JobPending || !strings.Contains(j.Reason, "cannot fit on this cluster") || !j.CannotFit || j.ModifyIndex != j.CreateIndex {
				t.Fatalf("job %s %s, modified at %d (created at %d), cannotFit %v: %q", j.ID, j.Status, j.ModifyIndex, j.CreateIndex, j.CannotFit, j.Reason)
			}
		}
		return true
	})
	// One entry per reasonDelay while submitting, one for the last ones.
	reasonEntries := int(srv.raft.LastIndex()-first) - jobs
	if most := int(submitting/reasonDelay) + 2; reasonEntries > most || reasonEntries >= jobs {
		t.Errorf("%d jobs submitted in %v had their reasons written in %d entries, want at most %d", jobs, submitting, reasonEntries, most)
	}
}
