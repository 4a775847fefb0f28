package sched

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// Rollouts: a service updated to a spec that changes its replicas has a
// running deployment (api.Deployment, started by the FSM's update). Each
// pass advances it, surge first so that the service never serves with
// fewer replicas than it asked for:
//
//   - a rank whose old replica is still the only one gets a new replica
//     next to it, at most strategy.maxParallel ranks in flight at once
//     (canaries first: while they wait for `ark job promote` only they
//     are placed); with strategy.stopFirst the old one is stopped
//     instead and its rank, missing, placed again at the new version;
//   - once the new replica of a rank has been ready minHealthyTime, the
//     old one is stopped (its agent waits task.shutdownDelay before
//     signalling it, while the endpoint already sends it nothing);
//   - when every rank is served by a healthy new replica alone, the
//     rollout is successful; when it made no progress for
//     progressDeadline, it failed (the FSM fails it at once when a new
//     replica ends by itself, and reverts it with autoRevert).

// ReplicaChanged reports whether b changes what a replica of a runs: its
// task, resources, topology or checkpointing. Anything else (replica
// count, priority, restart policy, update strategy) applies in place, and
// so do a builtin server's intervention rules and LoRA adapters: the
// running replica takes them from its agent (worker/agent/rules.go) and
// loads or drops adapters without a restart. A change of the base, the
// model or anything else of the task is a rollout, and so is a change of
// adapters that names a local path the running replica may not read
// (NewReadRoots): its sandbox was set when it started. ckptDir is the
// local directory of the cluster's checkpoint store (spec.ReadRoots).
func ReplicaChanged(a, b *spec.Job, ckptDir string) bool {
	shape := func(j *spec.Job) string {
		task := j.Task
		if bt := task.Builtin; bt != nil {
			c := *bt
			c.Rules, c.Adapters = nil, nil
			task.Builtin = &c
		}
		raw, _ := json.Marshal(struct {
			R spec.Resources
			T spec.Topology
			K spec.Task
			C spec.Checkpoint
		}{j.Resources, j.Topology, task, j.Checkpoint})
		return string(raw)
	}
	return shape(a) != shape(b) || len(NewReadRoots(a, b, ckptDir)) > 0
}

// NewReadRoots lists the local paths a builtin replica of b reads that
// one of a may not (spec.ReadRoots, the rule its driver confined it
// with): the topmost of each, sorted; none when b reads nothing new. An
// adapter in an object store (s3://, or a catalog model there) never
// needs one; a model://NAME has been resolved to its checkpoint's URI by
// the time a spec is stored, so its location counts as any other's.
//
// a is the version a replica runs now, which may have come in place:
// each version it took so was one whose paths it could read, so what a
// reads its sandbox allows (it may allow more, an adapter removed in
// place; comparing with a then errs towards a rollout, never past the
// sandbox).
func NewReadRoots(a, b *spec.Job, ckptDir string) []string {
	return spec.Uncovered(spec.ReadRoots(a.Task.Builtin, ckptDir), spec.ReadRoots(b.Task.Builtin, ckptDir))
}

// rankState is what serves one rank of a service during a rollout.
type rankState struct {
	cur *api.Allocation   // a serving replica of the version rolled out
	old []*api.Allocation // serving replicas of older versions
}

// rollouts plans the next step of every running deployment: the steps to
// commit and the ranks to place a new replica for.
func rollouts(v View, now time.Time, wake func(time.Time)) ([]state.RolloutStep, []missingReplica) {
	sv, ok := v.(ServiceView)
	if !ok {
		return nil, nil
	}
	var active []*api.Job
	for _, j := range sv.Services() {
		if j.Deployment.Active() {
			active = append(active, j)
		}
	}
	if len(active) == 0 {
		return nil, nil
	}
	byJob := map[string][]*api.Allocation{}
	for _, a := range v.LiveAllocs() {
		if a.Serving() {
			byJob[a.JobID] = append(byJob[a.JobID], a)
		}
	}
	var steps []state.RolloutStep
	var surge []missingReplica
	for _, j := range active {
		st, more := rolloutStep(j, byJob[j.ID], now, wake)
		if st != nil {
			steps = append(steps, *st)
		}
		surge = append(surge, more...)
	}
	return steps, surge
}

// rolloutStep plans one service's rollout.
func rolloutStep(j *api.Job, serving []*api.Allocation, now time.Time, wake func(time.Time)) (*state.RolloutStep, []missingReplica) {
	d := j.Deployment
	u := d.Strategy
	ranks := make([]rankState, j.Spec.Replicas)
	for _, a := range serving {
		if a.Rank < 0 || a.Rank >= len(ranks) {
			continue // past a lowered replica count: stopped by the update
		}
		if a.JobVersion == d.Version {
			ranks[a.Rank].cur = a
		} else {
			ranks[a.Rank].old = append(ranks[a.Rank].old, a)
		}
	}
	healthy := func(a *api.Allocation) bool {
		if a == nil || !a.Ready || a.ReadySince == nil {
			return false
		}
		at := a.ReadySince.Add(time.Duration(u.MinHealthyTime))
		if at.After(now) {
			wake(at)
			return false
		}
		return true
	}
	step := state.RolloutStep{JobID: j.ID, Version: d.Version}
	canaryPhase := !d.Promoted
	var place []int
	inFlight, newReplicas, healthyNew, done := 0, 0, 0, 0
	for r := range ranks {
		rs := &ranks[r]
		ok := healthy(rs.cur)
		if rs.cur != nil {
			newReplicas++
			if ok {
				healthyNew++
			} else {
				inFlight++
			}
		}
		switch {
		case ok && len(rs.old) > 0 && !canaryPhase:
			for _, a := range rs.old {
				step.Stop = append(step.Stop, a.ID)
			}
			done++
		case ok && len(rs.old) == 0:
			done++
		case rs.cur == nil && len(rs.old) > 0:
			place = append(place, r)
		}
	}
	// A rank no replica serves (its old one stopped first, or crashed)
	// is in flight too: missingReplicas places it at the new version.
	for r := range ranks {
		if ranks[r].cur == nil && len(ranks[r].old) == 0 {
			inFlight++
		}
	}
	budget := u.MaxParallel - inFlight
	if canaryPhase {
		budget = u.Canary - newReplicas
	}
	var surge []missingReplica
	for _, r := range place {
		if budget <= 0 {
			break
		}
		if u.StopFirst && !canaryPhase {
			// No new replica next to it: the old one stops, and its rank,
			// missing, is placed again at the new version.
			for _, a := range ranks[r].old {
				step.Stop = append(step.Stop, a.ID)
			}
			budget--
			continue
		}
		if after := j.Replica(r).RestartAfter; after != nil && after.After(now) {
			wake(*after)
			continue
		}
		surge = append(surge, missingReplica{job: j, rank: r})
		budget--
	}
	deadline := d.Progress.Add(time.Duration(u.ProgressDeadline))
	waiting := canaryPhase && healthyNew >= u.Canary
	switch {
	case done == len(ranks):
		step.Status = api.DeploymentSuccessful
		step.Message = fmt.Sprintf("%d of %d replicas run version %d", done, len(ranks), d.Version)
	case waiting:
		if msg := fmt.Sprintf("%d canary replica(s) of version %d healthy; `ark job promote %s` rolls out the rest", healthyNew, d.Version, j.ID); msg != d.Message {
			step.Message = msg
		}
	case !now.Before(deadline) && len(step.Stop) == 0 && len(surge) == 0:
		step.Status = api.DeploymentFailed
		step.Message = fmt.Sprintf("no progress within the progress deadline (%s): %d of %d replicas run version %d healthy",
			time.Duration(u.ProgressDeadline), healthyNew, len(ranks), d.Version)
	default:
		wake(deadline)
		if msg := fmt.Sprintf("%d of %d replicas updated, %d in flight", done, len(ranks), inFlight+len(surge)); msg != d.Message {
			step.Message = msg
		}
	}
	if len(step.Stop) == 0 && step.Status == "" && step.Message == "" {
		return nil, surge
	}
	slices.Sort(step.Stop)
	return &step, surge
}
