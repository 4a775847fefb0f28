package state

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// applyPlan commits each job placement of a plan that still fits the state
// at this index, all of a gang's allocations or none of them, and records
// the reasons of jobs that stay pending. A placement made on a stale
// snapshot is rejected here, never half-applied.
func applyPlan(txn *memdb.Txn, index uint64, req *ApplyPlanRequest) (*ApplyPlanResponse, error) {
	resp := &ApplyPlanResponse{Rejected: map[string]string{}}
	live := collect[*api.Allocation](nil, txn, tableAllocs, "id")
	loads := loadsOf(live)
	ports := usedPorts(txn, live)
	allocsChanged, jobsChanged := false, false
	for _, p := range req.Plan.Placements {
		if svc := runningService(txn, p.JobID); svc != nil {
			// Replacements of a running service's missing replicas
			// (apply_service.go).
			why, err := applyReplacement(txn, index, loads, ports, svc, p, req.Time)
			switch {
			case err != nil:
				return nil, err
			case why != "":
				resp.Rejected[p.JobID] = why
			default:
				resp.Placed = append(resp.Placed, p.JobID)
				allocsChanged = true
			}
			continue
		}
		if why := checkPlacement(txn, loads, ports, p); why != "" {
			resp.Rejected[p.JobID] = why
			continue
		}
		raw, _ := txn.First(tableJobs, "id", p.JobID)
		j := *raw.(*api.Job)
		for _, a := range p.Allocs {
			na := *a
			na.JobID = j.ID
			na.Status = api.AllocPending
			na.DesiredStatus = api.DesiredRun
			na.CreateIndex, na.ModifyIndex = index, index
			if err := txn.Insert(tableAllocs, &na); err != nil {
				return nil, fmt.Errorf("insert allocation %s: %w", a.ID, err)
			}
			if loads[a.NodeID] == nil {
				loads[a.NodeID] = loads[a.NodeID].clone()
			}
			loads[a.NodeID].add(&na)
			if a.Rank == 0 && a.MasterPort != 0 {
				ports[portKey{a.MasterAddr, a.MasterPort}] = true
			}
		}
		j.Status = api.JobRunning
		j.Reason, j.Reasons, j.CannotFit = "", nil, false
		j.Preempting, j.HeldNodes, j.HoldUntil = nil, nil, nil
		j.StartTime = timePtr(req.Time)
		addEvent(&j, index, req.Time, api.EventPlaced, "placed "+placedMessage(p.Allocs, j.Service))
		j.ModifyIndex = index
		if err := txn.Insert(tableJobs, &j); err != nil {
			return nil, err
		}
		resp.Placed = append(resp.Placed, j.ID)
		allocsChanged, jobsChanged = true, true
	}
	for _, pr := range req.Plan.Pending {
		raw, _ := txn.First(tableJobs, "id", pr.JobID)
		if raw == nil {
			continue
		}
		j := *raw.(*api.Job)
		// Entries written before reasons named holders have none on
		// either side: they replay as the text alone decided.
		if j.Status != api.JobPending || (j.Reason == pr.Reason && api.SameHolders(j.Reasons, pr.Reasons)) {
			continue
		}
		j.Reason, j.Reasons, j.CannotFit = pr.Reason, pr.Reasons, pr.Never
		j.ModifyIndex = index
		if err := txn.Insert(tableJobs, &j); err != nil {
			return nil, err
		}
		jobsChanged = true
	}
	for _, pr := range req.Plan.Preemptions {
		if why := checkPreemption(txn, pr); why != "" {
			resp.Rejected[pr.JobID] = why
			continue
		}
		if err := applyPreemption(txn, index, pr, req.Time); err != nil {
			return nil, err
		}
		if resp.Preempted == nil {
			resp.Preempted = map[string][]string{}
		}
		resp.Preempted[pr.JobID] = pr.Victims
		allocsChanged, jobsChanged = true, true
	}
	for _, st := range req.Plan.Rollouts {
		why, err := applyRollout(txn, index, st, req.Time)
		if err != nil {
			return nil, err
		}
		if why != "" {
			resp.Rejected[st.JobID] = why
		}
	}
	if allocsChanged {
		if err := setIndex(txn, tableAllocs, index); err != nil {
			return nil, err
		}
	}
	if jobsChanged {
		if err := setIndex(txn, tableJobs, index); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

type portKey struct {
	addr string
	port int
}

// usedPorts returns the rendezvous ports held by live gangs and the
// service ports held by live replicas.
func usedPorts(txn *memdb.Txn, live []*api.Allocation) map[portKey]bool {
	out := map[portKey]bool{}
	for _, a := range live {
		if a.Terminal() {
			continue
		}
		if a.MasterPort != 0 {
			out[portKey{a.MasterAddr, a.MasterPort}] = true
		}
		if a.Port != 0 {
			out[portKey{nodeAddress(txn, a.NodeID), a.Port}] = true
		}
	}
	return out
}

func nodeAddress(txn *memdb.Txn, nodeID string) string {
	if raw, _ := txn.First(tableNodes, "id", nodeID); raw != nil {
		return raw.(*api.Node).Address
	}
	return ""
}

// checkPlacement re-checks one job's placement against the current state
// (loads and ports include what this plan already committed), with the
// checks that never change between versions.
func checkPlacement(txn *memdb.Txn, loads map[string]*nodeLoad, ports map[portKey]bool, p JobPlacement) string {
	j, why := pendingJob(txn, p.JobID)
	if j == nil {
		return why
	}
	if len(p.Allocs) != j.Spec.Replicas {
		return fmt.Sprintf("plan places %d allocations, job has %d replicas", len(p.Allocs), j.Spec.Replicas)
	}
	tentative := map[string]*nodeLoad{}
	ranks := map[int]bool{}
	ids := map[string]bool{}
	for _, a := range p.Allocs {
		// Two ranks with one ID would overwrite each other on insert.
		if ex, _ := txn.First(tableAllocs, "id", a.ID); ex != nil || ids[a.ID] {
			return fmt.Sprintf("allocation ID %s is taken", a.ID)
		}
		ids[a.ID] = true
		if a.Rank < 0 || a.Rank >= j.Spec.Replicas || ranks[a.Rank] {
			return fmt.Sprintf("rank %d is out of range or repeated", a.Rank)
		}
		ranks[a.Rank] = true
		// A plan made before the job last restarted places an attempt
		// that is over: its ranks would never count for the job.
		if a.Attempt != j.RestartCount {
			return fmt.Sprintf("rank %d was planned for attempt %d, the job is at attempt %d (stale plan)", a.Rank, a.Attempt, j.RestartCount)
		}
		if a.JobVersion != j.Version {
			return fmt.Sprintf("rank %d was planned for version %d, the job is at version %d (stale plan)", a.Rank, a.JobVersion, j.Version)
		}
		if a.Rank == 0 && a.MasterPort != 0 && ports[portKey{a.MasterAddr, a.MasterPort}] {
			return fmt.Sprintf("rendezvous port %s:%d is taken", a.MasterAddr, a.MasterPort)
		}
		if _, why := onNode(txn, loads, tentative, a); why != "" {
			return why
		}
	}
	return ""
}

// Allocation statuses an agent may report.
var agentStatuses = map[string]bool{
	api.AllocPending: true, api.AllocRunning: true, api.AllocSucceeded: true, api.AllocFailed: true,
}

func applyAllocStatus(txn *memdb.Txn, index uint64, req *AllocStatusRequest) error {
	raw, _ := txn.First(tableAllocs, "id", req.AllocID)
	if raw == nil {
		return fmt.Errorf("allocation %s: %w", req.AllocID, ErrNotFound)
	}
	if !agentStatuses[req.Update.Status] {
		return fmt.Errorf("allocation status %q is not one an agent may report: %w", req.Update.Status, ErrConflict)
	}
	a := *raw.(*api.Allocation)
	if a.Terminal() {
		// Late or repeated reports of an ended task change nothing.
		return nil
	}
	u := req.Update
	reported := (u.Progress != "" && u.Progress != a.Progress) || (u.Checkpoint != nil && (a.LastCheckpoint == nil || *u.Checkpoint != *a.LastCheckpoint)) ||
		(u.Ready != nil && *u.Ready != a.Ready) || len(u.Evals) > 0
	if a.Status == u.Status && a.Message == u.Message && !reported {
		return nil
	}
	newCheckpoint := u.Checkpoint != nil && (a.LastCheckpoint == nil || *u.Checkpoint != *a.LastCheckpoint)
	if u.Progress != "" {
		a.Progress = u.Progress
	}
	if u.Checkpoint != nil {
		cp := *u.Checkpoint
		a.LastCheckpoint = &cp
	}
	if u.Ready != nil {
		if *u.Ready && !a.Ready {
			a.ReadySince = timePtr(req.Time)
		}
		a.Ready = *u.Ready
		if !a.Ready {
			a.ReadySince = nil
		}
	}
	if len(u.Evals) > 0 {
		a.Evals = append([]api.EvalResult(nil), u.Evals...)
	}
	a.Status = u.Status
	if u.Status == api.AllocFailed && a.DesiredStatus == api.DesiredStop && a.StopCause != "" {
		// The task ended because the scheduler stopped it: no failure
		// of its own. The cause was recorded by the stopping command.
		a.Status = a.StopCause
	}
	a.ExitCode = u.ExitCode
	a.Signal = u.Signal
	if u.Ready == nil || u.Message != "" {
		a.Message = u.Message // a readiness report keeps the message
	}
	if a.Status == api.AllocFailed {
		a.StderrTail = boundTail(u.StderrTail)
	}
	started := u.Status == api.AllocRunning && a.StartTime == nil
	if started {
		a.StartTime = timePtr(req.Time)
	}
	if a.Terminal() {
		a.FinishTime = timePtr(req.Time)
		a.Ready, a.ReadySince = false, nil
	}
	a.ModifyIndex = index
	if err := txn.Insert(tableAllocs, &a); err != nil {
		return err
	}
	if err := setIndex(txn, tableAllocs, index); err != nil {
		return err
	}
	if err := allocEvents(txn, index, &a, started, newCheckpoint, req.Time); err != nil {
		return err
	}
	if svc, err := serviceAllocEnded(txn, index, &a, req.Time); svc || err != nil {
		return err
	}
	return reconcileJob(txn, index, a.JobID, req.Time, req.StopCause)
}

// checkPreemption re-checks a preemption against the current state: the
// job is pending and every victim is a running job of lower priority (or
// borrowed capacity it reclaims).
func checkPreemption(txn *memdb.Txn, pr Preemption) string {
	j, why := pendingJob(txn, pr.JobID)
	if j == nil {
		return why
	}
	if len(pr.Victims) == 0 {
		return "preemption names no victims"
	}
	for _, id := range pr.Victims {
		raw, _ := txn.First(tableJobs, "id", id)
		if raw == nil {
			return fmt.Sprintf("victim %s no longer exists", id)
		}
		v := raw.(*api.Job)
		switch {
		case v.ID == j.ID:
			return "a job cannot preempt itself"
		case v.Status != api.JobRunning:
			return fmt.Sprintf("victim %s is %s, not running", id, v.Status)
		case v.Priority >= j.Priority && !pr.Reclaim:
			return fmt.Sprintf("victim %s has priority %d, not below %d", id, v.Priority, j.Priority)
		}
	}
	return ""
}

// applyPreemption stops every victim's allocations and requeues each
// victim whole; the job records what it waits for.
func applyPreemption(txn *memdb.Txn, index uint64, pr Preemption, now time.Time) error {
	raw, _ := txn.First(tableJobs, "id", pr.JobID)
	j := *raw.(*api.Job)
	for _, id := range pr.Victims {
		raw, _ := txn.First(tableJobs, "id", id)
		v := *raw.(*api.Job)
		v.Preemptions++
		v.LastPreemption = fmt.Sprintf("preempted by job %s (priority %d over %d)", j.ID, j.Priority, v.Priority)
		if pr.Reclaim && v.Priority >= j.Priority {
			v.LastPreemption = fmt.Sprintf("preempted: queue %s reclaimed the GPUs this job borrowed (for job %s)", j.Queue, j.ID)
		}
		v.Preempting = nil
		addEvent(&v, index, now, api.EventPreempted, v.LastPreemption)
		if v.Service {
			if err := preemptReplicas(txn, index, &v, pr.Nodes, pr.StopCause); err != nil {
				return err
			}
			continue
		}
		if err := requeue(txn, index, &v, v.LastPreemption, pr.StopCause); err != nil {
			return err
		}
	}
	// Victims accumulate until the job is placed: the scheduler never
	// evicts one of them again for this job.
	j.Preempting = appendNew(append([]string(nil), j.Preempting...), pr.Victims...)
	j.HeldNodes, j.HoldUntil = nil, nil
	if len(pr.Nodes) > 0 && !pr.HoldUntil.IsZero() {
		j.HeldNodes = append([]string(nil), pr.Nodes...)
		j.HoldUntil = timePtr(pr.HoldUntil)
	}
	j.Reason = fmt.Sprintf("preempting %s; waiting for their allocations to stop", strings.Join(pr.Victims, ", "))
	addEvent(&j, index, now, api.EventPreempting, j.Reason)
	j.CannotFit = false
	j.ModifyIndex = index
	return txn.Insert(tableJobs, &j)
}

// appendNew appends the ids list does not hold yet.
func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}
