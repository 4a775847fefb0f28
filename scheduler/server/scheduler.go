package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"
	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// backfillReservations is how many pending jobs a pass may hold nodes
// for (placement.Input.MaxReservations); see bench/README.md's over-time
// section for the measurements behind it.
const backfillReservations = 1

// Rendezvous ports are taken from this range on rank 0's node address.
const (
	masterPortBase  = 29500
	masterPortRange = 2000
)

// runScheduler places pending jobs whenever the state changes, until ctx
// ends. It plans on an immutable snapshot; the FSM re-checks the plan at
// commit, so a plan made on a stale snapshot is rejected, not half-applied,
// and planned again on the next pass.
//
// A pass looks at every pending job only when capacity may have changed
// (a node or allocation was written since the last full pass); otherwise
// only at jobs submitted since the last pass: an older pending job did not
// fit the same capacity then and cannot now. This keeps a deep queue of
// waiting jobs from making every submission cost a scan of the queue.
func (s *Server) runScheduler(ctx context.Context) {
	var seen, capacitySeen, jobsSeen uint64
	replan := true // plan once on gaining leadership, whatever the index
	for ctx.Err() == nil {
		wait := seen
		if replan {
			wait = 0
		}
		// Wake at the end of the first restart backoff, if any.
		bctx, cancel := ctx, context.CancelFunc(func() {})
		wake := s.nextWake
		s.nextWake = time.Time{}
		if !wake.IsZero() {
			bctx, cancel = context.WithDeadline(ctx, wake)
		}
		idx, _ := s.store.Blocking(bctx, wait, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
			snap.WatchAll(ws)
			return snap.LatestIndex(), nil
		})
		timedOut := bctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if timedOut {
			replan = true // a backoff ended: look at every pending job
		} else if !wake.IsZero() && s.nextWake.IsZero() {
			s.nextWake = wake // keep waiting for it
		}
		if !replan && idx <= seen {
			continue
		}
		full := replan
		seen, replan = idx, false
		snap := s.store.Snapshot()
		capacity := max(snap.Index(state.TableNodes), snap.Index(state.TableAllocs))
		if capacity != capacitySeen {
			full = true
		}
		newerThan := jobsSeen
		if full {
			newerThan = 0
		}
		capacitySeen, jobsSeen = capacity, snap.Index(state.TableJobs)
		plan := s.plan(snap, newerThan)
		if len(plan.Placements) == 0 && len(plan.Pending) == 0 && len(plan.Preemptions) == 0 {
			continue
		}
		resp, _, err := s.apply(ctx, state.ApplyPlanType, &state.ApplyPlanRequest{Plan: plan, Time: time.Now().UTC()})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("committing plan failed", zap.Error(err))
				sleep(ctx, time.Second)
			}
			continue
		}
		r := resp.(*state.ApplyPlanResponse)
		for _, id := range r.Placed {
			s.log.Info("job placed", zap.String("job", id))
		}
		for id, victims := range r.Preempted {
			s.log.Info("job preempts", zap.String("job", id), zap.Strings("victims", victims))
		}
		if len(r.Rejected) > 0 {
			// The state moved under the plan (or the planner and the
			// re-check disagree, which is a bug worth the log line):
			// plan again without waiting for another change.
			s.log.Info("plan partly rejected at commit; replanning", zap.Any("rejected", r.Rejected))
			sleep(ctx, 50*time.Millisecond)
			replan = true
		}
	}
}

// plan runs placement over a snapshot for the pending jobs created after
// index newerThan and turns its result into a Plan with full allocations.
func (s *Server) plan(snap *state.Snapshot, newerThan uint64) state.Plan {
	var pending []*api.Job
	if newerThan > 0 {
		pending = snap.PendingJobsSince(newerThan)
		// The jobs the last full pass held nodes for are planned again
		// first, in the same order, so that the new jobs see their
		// reservations.
		var held []*api.Job
		for _, id := range s.heldJobs {
			if j := snap.Job(nil, id); j != nil && j.Status == api.JobPending && j.CreateIndex <= newerThan {
				held = append(held, j)
			}
		}
		pending = append(held, pending...)
	} else {
		pending = snap.JobsByStatus(nil, api.JobPending)
	}
	// A restarting job waits out its backoff.
	now := time.Now()
	n := 0
	for _, j := range pending {
		if j.RestartAfter != nil && j.RestartAfter.After(now) {
			if s.nextWake.IsZero() || j.RestartAfter.Before(s.nextWake) {
				s.nextWake = *j.RestartAfter
			}
			continue
		}
		pending[n] = j
		n++
	}
	pending = pending[:n]
	if len(pending) == 0 {
		return state.Plan{}
	}
	// Ineligible (and draining) nodes take nothing new.
	var nodes []*api.Node
	closed := 0
	nodeAddr := map[string]string{} // every node's, eligible or not: ports are per address
	for _, n := range snap.Nodes(nil) {
		nodeAddr[n.ID] = n.Address
		if n.Ineligible {
			closed++
			continue
		}
		nodes = append(nodes, n)
	}
	var live []*api.Allocation
	for _, a := range snap.Allocs(nil) {
		if !a.Terminal() {
			live = append(live, a)
		}
	}
	// Fair share across queues, and queue quotas, decide which pending
	// jobs this pass tries, in which order.
	held := map[string]string{}
	all := pending
	quotaNeed := map[string]int64{}
	pending = s.admit(snap, pending, nodes, live, held, quotaNeed)
	in := placement.Input{Nodes: nodes, Allocs: live, Pending: pending,
		Preempt: !s.cfg.NoPreemption, Backfill: !s.cfg.NoBackfill, MaxReservations: backfillReservations}
	if in.Preempt || in.Backfill {
		in.Run = s.runInfo(snap, live, now)
		in.Reclaim = s.withinQuota(snap, pending, live)
		in.QuotaNeed = quotaNeed
	}
	res := placement.Place(in)
	if newerThan == 0 || len(res.Held) > 0 {
		s.heldJobs = s.heldJobs[:0]
		for _, h := range res.Held {
			s.heldJobs = append(s.heldJobs, h.JobID)
		}
	}
	for id, why := range held {
		res.Unplaced[id] = why
	}

	byID := map[string]*api.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	jobs := map[string]*api.Job{}
	for _, j := range all {
		jobs[j.ID] = j
	}
	ports := map[string]map[int]bool{}
	for _, a := range live {
		if a.MasterPort != 0 {
			if ports[a.MasterAddr] == nil {
				ports[a.MasterAddr] = map[int]bool{}
			}
			ports[a.MasterAddr][a.MasterPort] = true
		}
		if addr := nodeAddr[a.NodeID]; a.Port != 0 {
			if ports[addr] == nil {
				ports[addr] = map[int]bool{}
			}
			ports[addr][a.Port] = true
		}
	}
	plan := state.Plan{Preemptions: preemptions(res)}
	for _, p := range res.Placements {
		job := jobs[p.JobID]
		master := byID[p.Assignments[0].NodeID]
		port := freePort(ports, master.Address)
		if port == 0 {
			res.Unplaced[job.ID] = fmt.Sprintf("waiting for a free rendezvous port on %s", master.Address)
			continue
		}
		allocs := s.allocations(job, p, byID, master.Address, port)
		if job.Kind == spec.KindInference {
			ok := true
			for _, a := range allocs {
				if a.Port = freePort(ports, byID[a.NodeID].Address); a.Port == 0 {
					ok = false
				}
			}
			if !ok {
				res.Unplaced[job.ID] = "waiting for free service ports on the chosen nodes"
				continue
			}
		}
		plan.Placements = append(plan.Placements, state.JobPlacement{JobID: job.ID, Allocs: allocs})
	}
	if closed > 0 {
		for id, why := range res.Unplaced {
			res.Unplaced[id] = fmt.Sprintf("%s; %d more node(s) are ineligible or draining", why, closed)
		}
	}
	ids := make([]string, 0, len(res.Unplaced))
	for id := range res.Unplaced {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if jobs[id].Reason != res.Unplaced[id] {
			plan.Pending = append(plan.Pending, state.PendingReason{JobID: id, Reason: res.Unplaced[id]})
		}
	}
	return plan
}

// allocations builds a placed job's allocations with ranks and the
// rendezvous point.
func (s *Server) allocations(job *api.Job, p placement.Placement, nodes map[string]*api.Node, masterAddr string, masterPort int) []*api.Allocation {
	nodeRank := map[string]int{}
	localCount := map[string]int{}
	for _, a := range p.Assignments {
		if _, ok := nodeRank[a.NodeID]; !ok {
			nodeRank[a.NodeID] = len(nodeRank)
		}
		localCount[a.NodeID]++
	}
	local := map[string]int{}
	out := make([]*api.Allocation, 0, len(p.Assignments))
	suffix := randomSuffix(2)
	for _, a := range p.Assignments {
		n := nodes[a.NodeID]
		out = append(out, &api.Allocation{
			ID:             fmt.Sprintf("%s-%d-%s", job.ID, a.Rank, suffix),
			JobID:          job.ID,
			NodeID:         n.ID,
			Node:           n.Name,
			Rank:           a.Rank,
			WorldSize:      len(p.Assignments),
			NodeRank:       nodeRank[a.NodeID],
			LocalRank:      local[a.NodeID],
			LocalWorldSize: localCount[a.NodeID],
			GPUs:           a.GPUs,
			GPUMilli:       p.Request.GPUMilli,
			GPUMemoryBytes: p.Request.Allocation("", n, a.GPUs).GPUMemoryBytes,
			CPUMilli:       p.Request.CPUMilli,
			MemoryBytes:    p.Request.MemoryBytes,
			MasterAddr:     masterAddr,
			MasterPort:     masterPort,
			Attempt:        job.RestartCount,
			Kind:           job.Kind,
			Task:           job.Spec.Task,
			Checkpoint:     job.Spec.Checkpoint,
			CheckpointURI:  s.cfg.CheckpointStore + "/" + job.Namespace + "/" + job.ID,
		})
		local[a.NodeID]++
	}
	return out
}

// freePort takes a port of the range no live allocation holds on addr. It
// starts the search at a random offset: a port something outside Ark
// holds on the node (a user's own torchrun, another cluster on the same
// host) then fails one attempt, not every restart of the job.
func freePort(used map[string]map[int]bool, addr string) int {
	if used[addr] == nil {
		used[addr] = map[int]bool{}
	}
	start := mrand.IntN(masterPortRange)
	for i := range masterPortRange {
		p := masterPortBase + (start+i)%masterPortRange
		if !used[addr][p] {
			used[addr][p] = true
			return p
		}
	}
	return 0
}

func randomSuffix(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
