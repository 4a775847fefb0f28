// Package sched is the leader's scheduling pass, pure: a view of the
// replicated state, the configuration and the time go in; a plan comes out
// (placements with full allocations, preemptions, pending reasons) with
// the jobs it holds nodes for. It reads no clock, network or Raft, and its
// only randomness is the caller's (a test checks its imports). The server
// runs it in its loop and commits what it returns; bench/placementsim runs
// the same pass over the trace, so its figures are the server's.
//
// One pass, top to bottom:
//
//   - pass.go: Pass. Which pending jobs to look at (all, or only those
//     newer than the last full pass), restart backoffs, then the steps
//     below, then the plan.
//   - admit.go: dominant resource fairness across queues and quota
//     admission with borrowing; a job over its quota may still be tried
//     when evicting lower-priority work of its own queue brings the queue
//     back within quota.
//   - runinfo.go: what preemption and backfill read of each live
//     allocation at this time (priority, work lost since its checkpoint,
//     declared end, borrowed capacity, protection after start).
//   - holds.go: nodes a preemptor's victims free are held for it until it
//     is placed or the hold expires, so that a preemption ends in the
//     preemptor's placement and never evicts the same work twice.
//   - allocs.go: allocations of a placed job (ranks, rendezvous and
//     service ports, checkpoint URI).
//   - services.go: services (inference jobs) stay running while their
//     replicas come and go: a rank no allocation serves is placed alone,
//     after its restart backoff, before pending work; a service of zero
//     replicas runs with none.
//   - verify.go: Verify, the leader's re-check of a plan against the
//     latest state just before the commit, with the same feasibility the
//     planner uses (placement.Fit).
//
// Feasibility, packing, gangs, preemption victims and backfill
// reservations are scheduler/placement's; this package decides which jobs
// it sees, in which order, and with what constraints.
package sched
