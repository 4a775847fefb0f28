package server

import (
	"sort"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// reasonDelay bounds how long the scheduling loop holds the pending
// reasons it found before committing them, all in one PendingReasons entry.
//
// Why hold them: without it, every submission that simply waits cost a
// second Raft entry (a plan with its first reason), fsync'd on every
// server, one pass after its own; at one client that was half of the
// log's fsyncs. Held for up to reasonDelay, the reasons of every job
// submitted meanwhile go out in one entry, and a job placed within the
// delay never has one written. Reads are not merged with held reasons:
// every server shows the same committed state, a reason at most
// reasonDelay (plus a commit) after the pass that found it.
const reasonDelay = 250 * time.Millisecond

// heldReasons are the pending reasons the loop found and has not committed
// yet, by job. Only the loop uses it.
type heldReasons struct {
	byJob map[string]heldReason
	since time.Time // when the oldest held reason was found; zero when none
}

type heldReason struct {
	pr state.PendingReason
	// basis is the job's ModifyIndex in the state the reason was found
	// on: a job written since (preempting, updated, requeued) may have
	// another reason now, and the next pass that looks at it finds it. A
	// kept reason does not move it (state/kept_reasons.go).
	basis uint64
}

// hold keeps a pass's reasons, made on snap, found at now. A newer reason
// for a job replaces the one held.
func (h *heldReasons) hold(snap *state.Snapshot, prs []state.PendingReason, now time.Time) {
	for _, pr := range prs {
		j := snap.Job(nil, pr.JobID)
		if j == nil {
			continue
		}
		if h.byJob == nil {
			h.byJob = map[string]heldReason{}
		}
		h.byJob[pr.JobID] = heldReason{pr: pr, basis: j.ModifyIndex}
	}
	if len(h.byJob) > 0 && h.since.IsZero() {
		h.since = now
	}
}

// due is when the held reasons must be committed; zero when none are held.
func (h *heldReasons) due() time.Time {
	if h.since.IsZero() {
		return time.Time{}
	}
	return h.since.Add(reasonDelay)
}

// take returns the held reasons still worth writing on snap, the latest
// state, by job ID, and forgets them all. A reason is dropped when its job
// is gone or no longer pending, was written since the reason was found
// (placed and requeued, preempting, updated), or already has that reason.
func (h *heldReasons) take(snap *state.Snapshot) []state.PendingReason {
	if len(h.byJob) == 0 {
		h.since = time.Time{}
		return nil
	}
	var out []state.PendingReason
	for id, hr := range h.byJob {
		j := snap.Job(nil, id)
		switch {
		case j == nil, j.Status != api.JobPending, j.ModifyIndex != hr.basis:
		case j.Reason == hr.pr.Reason && api.SameHolders(j.Reasons, hr.pr.Reasons):
		default:
			out = append(out, hr.pr)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].JobID < out[k].JobID })
	h.byJob, h.since = nil, time.Time{}
	return out
}
