package sched

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
)

// Input is what a pass reads besides the state.
type Input struct {
	// Now is the pass's time: restart backoffs, holds, and the work each
	// running allocation would lose are measured against it.
	Now time.Time
	// NewerThan > 0 looks only at the pending jobs created after that
	// index (with the jobs of Held and those holding nodes): an older
	// pending job did not fit the same capacity then and cannot now. 0
	// looks at every pending job.
	NewerThan uint64
	// Held are the jobs the last full pass held nodes for (Output.Held).
	Held []string
	// Rand picks ports and allocation suffixes; the caller seeds it.
	Rand *rand.Rand
	// Views, when set, carries the placement's per-kind node views from
	// one pass to the next (placement.ViewCache): the loop that runs the
	// passes keeps one. The plan is the same without it.
	Views *placement.ViewCache
}

// Output is a pass's result.
type Output struct {
	Plan state.Plan
	// Held are the jobs this pass held nodes for (backfill), in pass
	// order; HeldSet says whether the caller should replace its list
	// (a partial pass that held nothing keeps the last full pass's).
	Held    []string
	HeldSet bool
	// Wake is the earliest time something changes without a state change
	// (a restart backoff or a preemption hold ends); zero when none.
	Wake time.Time
}

// Empty reports whether the plan has nothing to commit.
func (o *Output) Empty() bool {
	return len(o.Plan.Placements) == 0 && len(o.Plan.Pending) == 0 && len(o.Plan.Preemptions) == 0 && len(o.Plan.Rollouts) == 0
}

// Pass plans one scheduling pass over v.
func Pass(v View, cfg Config, in Input) Output {
	var out Output
	wake := func(t time.Time) {
		if out.Wake.IsZero() || t.Before(out.Wake) {
			out.Wake = t
		}
	}
	job := jobLookup(v)
	pending := candidates(v, job, in)
	// A restarting job waits out its backoff.
	n := 0
	for _, j := range pending {
		if j.RestartAfter != nil && j.RestartAfter.After(in.Now) {
			wake(*j.RestartAfter)
			continue
		}
		pending[n] = j
		n++
	}
	pending = pending[:n]
	// Services: scaled to zero, or missing replicas (services.go).
	pending, out.Plan.Placements = scaledToZero(pending)
	missing := missingReplicas(v, in.Now, wake)
	var surge []missingReplica
	out.Plan.Rollouts, surge = rollouts(v, in.Now, wake)
	missing = append(missing, surge...)
	if len(pending) == 0 && len(missing) == 0 {
		return out
	}
	// Ineligible (and draining) nodes take nothing new.
	var nodes []*api.Node
	closed := 0
	byID := map[string]*api.Node{}
	nodeAddr := map[string]string{} // every node's, eligible or not: ports are per address
	for _, n := range v.Nodes() {
		nodeAddr[n.ID] = n.Address
		if n.Ineligible {
			closed++
			continue
		}
		nodes = append(nodes, n)
		byID[n.ID] = n
	}
	live := v.LiveAllocs()
	if len(missing) > 0 {
		var placed []state.JobPlacement
		placed, live = replaceReplicas(&cfg, missing, nodes, byID, nodeAddr, live, holds(pending, in.Now, func(time.Time) {}), in.Rand)
		out.Plan.Placements = append(out.Plan.Placements, placed...)
	}
	if len(pending) == 0 {
		return out
	}
	// Fair share across queues, and queue quotas, decide which pending
	// jobs this pass tries, in which order.
	adm := admit(&cfg, job, pending, nodes, live, in.Now)
	pin := placement.Input{Nodes: nodes, Allocs: live, Pending: adm.order,
		Preempt: !cfg.NoPreemption, Backfill: !cfg.NoBackfill, MaxReservations: cfg.reservations(), MaxPreemptSearches: cfg.preemptSearches(),
		MaxExplain: cfg.explainDepth(), Views: in.Views}
	pin.Holds = holds(pending, in.Now, wake)
	if pin.Preempt || pin.Backfill {
		pin.Run = runInfo(&cfg, job, live, in.Now)
		pin.Reclaim = withinQuota(&cfg, job, adm.order, live)
		pin.QuotaNeed = adm.quotaNeed
	}
	res := placement.Place(pin)
	if pin.Preempt && len(res.Unplaced) > 0 {
		// Work still protected may be preempted once its protection
		// ends, and no write will say when: look again then. (Before
		// CapacityIndex, any allocation's next write did, by chance.)
		if t := protectionEnds(&cfg, job, live, in.Now); !t.IsZero() {
			wake(t)
		}
	}
	if in.NewerThan == 0 || len(res.Held) > 0 {
		out.HeldSet = true
		for _, h := range res.Held {
			out.Held = append(out.Held, h.JobID)
		}
	}
	why := func(id string, r placement.Reason) {
		e := res.Why[id]
		e.Add(r)
		res.Why[id] = e
	}
	if res.Why == nil {
		res.Why = map[string]placement.Explanation{}
	}
	for id, text := range res.Unplaced {
		if _, ok := res.Why[id]; !ok { // every reason should be structured; keep the text if one is not
			res.Why[id] = placement.Explain(placement.Reason{Detail: text})
		}
	}
	for id, text := range adm.held {
		res.Why[id] = placement.Explain(placement.Reason{Rule: placement.RuleQuota, Detail: text})
	}

	jobs := map[string]*api.Job{}
	for _, j := range pending {
		jobs[j.ID] = j
	}
	used := usedPorts(live, nodeAddr)
	out.Plan.Preemptions = preemptions(res)
	for i := range out.Plan.Preemptions {
		out.Plan.Preemptions[i].HoldUntil = in.Now.Add(cfg.preemptHold())
	}
	for _, p := range res.Placements {
		j := jobs[p.JobID]
		allocs, noPort := build(&cfg, j, p, byID, used, in.Rand)
		if noPort != "" {
			res.Why[j.ID] = placement.Explain(placement.Reason{Rule: placement.RulePorts, Detail: noPort})
			continue
		}
		out.Plan.Placements = append(out.Plan.Placements, state.JobPlacement{JobID: j.ID, Allocs: allocs})
	}
	ids := make([]string, 0, len(res.Why))
	for id := range res.Why {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if closed > 0 {
			why(id, placement.Reason{Rule: placement.RuleIneligible, Detail: fmt.Sprintf("%d more node(s) are ineligible or draining", closed)})
		}
		e := res.Why[id]
		// A new text, or the same text with other jobs holding the GPUs
		// it waits for (the reasons name them).
		if text, wire := e.Text(), wireReasons(e); jobs[id].Reason != text || !api.SameHolders(jobs[id].Reasons, wire) {
			out.Plan.Pending = append(out.Plan.Pending, state.PendingReason{JobID: id, Reason: text, Reasons: wire, Never: e.Never})
		}
	}
	return out
}

// wireReasons are an explanation's reasons as the API shows them.
func wireReasons(e placement.Explanation) []api.Reason {
	out := make([]api.Reason, len(e.Reasons))
	for i, r := range e.Reasons {
		// placement names at most api.MaxReasonHolders holders and counts
		// the rest (reasons.go), so the reason goes out as it is.
		out[i] = api.Reason{Rule: r.Rule.String(), Nodes: r.Nodes, Detail: r.Detail, Holders: r.Holders, MoreHolders: r.MoreHolders}
	}
	return out
}

// candidates are the pending jobs a pass looks at: all of them, or those
// newer than in.NewerThan after the jobs the last full pass held nodes
// for (in the same order, so that the new jobs see their reservations)
// and the jobs holding nodes their preemptions freed.
func candidates(v View, job func(string) *api.Job, in Input) []*api.Job {
	if in.NewerThan == 0 {
		return v.Pending(0)
	}
	seen := map[string]bool{}
	var out []*api.Job
	add := func(j *api.Job) {
		if j != nil && j.Status == api.JobPending && !seen[j.ID] {
			seen[j.ID] = true
			out = append(out, j)
		}
	}
	for _, id := range in.Held {
		if j := job(id); j != nil && j.CreateIndex <= in.NewerThan {
			add(j)
		}
	}
	for _, j := range v.Holding() {
		add(j)
	}
	for _, j := range v.Pending(in.NewerThan) {
		add(j)
	}
	return out
}
