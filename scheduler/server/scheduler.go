package server

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-memdb"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/state"
)

// runScheduler runs the scheduling pass (scheduler/sched) whenever the
// state changes, until ctx ends, and commits its plans: the leader is the
// only writer of plans. Each plan is made on an immutable snapshot and
// checked against the latest state just before it is proposed
// (sched.Verify); the FSM keeps only the checks that never change between
// versions. A placement dropped by either is planned again on the next
// pass, never half-applied.
//
// A pass looks at every pending job only when capacity may have changed
// (state.CapacityIndex moved: a node changed, an allocation ended or was
// told to stop, a job was requeued or updated); otherwise only at jobs
// submitted since the last pass: an older pending job did not fit the
// same capacity then and cannot now. This keeps a deep queue of waiting jobs from making
// every submission, placement or "running" report cost a scan of the
// queue. Changes that arrive while a pass runs are taken together by the
// next one.
//
// Pending reasons are held (held_reasons.go) and committed together, in a
// PendingReasons entry, once the oldest has waited reasonDelay: a job that
// simply waits costs one entry, not two, and its reason is kept beside it
// (state/kept_reasons.go) rather than rewriting the job.
func (s *Server) runScheduler(ctx context.Context) {
	var seen, capacitySeen, jobsSeen uint64
	var held []string  // the jobs the last full pass held nodes for
	var wake time.Time // when a backoff or hold ends with no state change
	var reasons heldReasons
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	cfg := s.schedConfig()
	views := &placement.ViewCache{} // this leadership's: a new term starts from the state alone
	replan := true                  // plan once on gaining leadership, whatever the index
	for ctx.Err() == nil {
		wait := seen
		if replan {
			wait = 0
		}
		bctx, cancel := ctx, context.CancelFunc(func() {})
		if until := earliest(wake, reasons.due()); !until.IsZero() {
			bctx, cancel = context.WithDeadline(ctx, until)
		}
		idx, _ := s.store.Blocking(bctx, wait, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
			snap.WatchAll(ws)
			return snap.LatestIndex(), nil
		})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if !wake.IsZero() && !time.Now().Before(wake) {
			replan, wake = true, time.Time{} // a backoff or hold ended: look at every pending job
		}
		if !replan && idx <= seen {
			s.commitReasons(ctx, &reasons)
			continue
		}
		full := replan
		seen, replan = idx, false
		snap := s.store.Snapshot()
		capacity := snap.Index(state.CapacityIndex)
		if capacity != capacitySeen {
			full = true
		}
		newerThan := jobsSeen
		if full {
			newerThan = 0
		}
		capacitySeen, jobsSeen = capacity, snap.Index(state.TableJobs)
		now := time.Now().UTC()
		out := sched.Pass(sched.FromSnapshot(snap), cfg, sched.Input{Now: now, NewerThan: newerThan, Held: held, Rand: rng, Views: views})
		s.met.observePass(full, time.Since(now))
		if out.HeldSet {
			held = out.Held
		}
		if !out.Wake.IsZero() && (wake.IsZero() || out.Wake.Before(wake)) {
			wake = out.Wake
		}
		reasons.hold(snap, out.Plan.Pending, now)
		out.Plan.Pending = nil
		if !out.Empty() && s.commitPlan(ctx, out.Plan, snap, now) {
			replan = true
		}
		s.commitReasons(ctx, &reasons)
	}
}

// commitReasons commits the held reasons once they are due, in one
// PendingReasons entry.
func (s *Server) commitReasons(ctx context.Context, reasons *heldReasons) {
	if due := reasons.due(); due.IsZero() || time.Now().Before(due) {
		return
	}
	latest := s.store.Snapshot()
	prs := reasons.take(latest)
	if len(prs) == 0 {
		return
	}
	if _, _, err := s.apply(ctx, state.PendingReasonsType, &state.PendingReasonsRequest{Reasons: prs}); err != nil && ctx.Err() == nil {
		s.log.Warn("committing pending reasons failed", zap.Error(err))
		// They are still the latest found: hold them for the next try.
		reasons.hold(latest, prs, time.Now())
	}
}

// commitPlan verifies plan, made on snap, against the latest state and
// commits it. It reports whether the loop should plan again without
// waiting for a change (part of the plan was rejected).
func (s *Server) commitPlan(ctx context.Context, plan state.Plan, snap *state.Snapshot, now time.Time) bool {
	replan := false
	plan, rejected := sched.Verify(sched.FromSnapshot(s.store.Snapshot()), plan)
	if len(rejected) > 0 {
		s.log.Info("plan partly rejected before commit; replanning", zap.Any("rejected", rejected))
		replan = true
	}
	resp, _, err := s.apply(ctx, state.ApplyPlanType, &state.ApplyPlanRequest{Plan: plan, Time: now})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("committing plan failed", zap.Error(err))
			sleep(ctx, time.Second)
		}
		return replan
	}
	r := resp.(*state.ApplyPlanResponse)
	s.met.observePlan(snap, plan, r, len(rejected), now)
	for _, id := range r.Placed {
		s.log.Info("job placed", zap.String("job", id))
	}
	for id, victims := range r.Preempted {
		s.log.Info("job preempts", zap.String("job", id), zap.Strings("victims", victims))
	}
	if len(r.Rejected) > 0 {
		// The state moved between the check and the commit: plan
		// again without waiting for another change.
		s.log.Info("plan partly rejected at commit; replanning", zap.Any("rejected", r.Rejected))
		sleep(ctx, 50*time.Millisecond)
		replan = true
	}
	return replan
}

// earliest is the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// schedConfig is the scheduler's part of the server's configuration.
func (s *Server) schedConfig() sched.Config {
	return sched.Config{
		Queues:            s.cfg.Queues,
		NoPreemption:      s.cfg.NoPreemption,
		NoBackfill:        s.cfg.NoBackfill,
		PreemptMinRuntime: s.cfg.PreemptMinRuntime,
		Order:             s.cfg.QueueOrder,
		AgeAfter:          s.cfg.QueueAgeAfter,
		AgeTiers:          s.cfg.QueueAgeTiers,
		CheckpointStore:   s.cfg.CheckpointStore,
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
