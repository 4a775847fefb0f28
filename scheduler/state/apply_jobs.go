package state

import (
	"cmp"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

func applyRegisterJob(txn *memdb.Txn, index uint64, req *RegisterJobRequest) (*RegisterJobResponse, error) {
	resp, inserted, err := registerJob(txn, index, req)
	if err != nil || !inserted {
		return resp, err
	}
	return resp, setIndex(txn, tableJobs, index)
}

// registerJob stores one new job (or finds the one its submit token
// already made); the caller moves the jobs table's index. A rejection
// (missing ID, ID taken) is returned before anything is written, so
// RegisterJobs can answer it for one request and apply the others.
func registerJob(txn *memdb.Txn, index uint64, req *RegisterJobRequest) (resp *RegisterJobResponse, inserted bool, err error) {
	j := req.Job
	if j == nil || j.ID == "" {
		return nil, false, &rejection{fmt.Errorf("register job: missing job or ID")}
	}
	if j.SubmitToken != "" {
		if raw, _ := txn.First(tableJobs, "token", j.SubmitToken); raw != nil {
			return &RegisterJobResponse{ID: raw.(*api.Job).ID, Existing: true}, false, nil
		}
	}
	if existing, _ := txn.First(tableJobs, "id", j.ID); existing != nil {
		return nil, false, &rejection{fmt.Errorf("job %s already exists: %w", j.ID, ErrConflict)}
	}
	// The request's job was decoded for this apply alone: it is stored as
	// it is, not copied.
	nj := j
	nj.Status = api.JobPending
	nj.Allocations, nj.Events = nil, nil
	addEvent(nj, index, nj.SubmitTime, api.EventSubmitted, fmt.Sprintf("submitted to queue %s with priority %d", nj.Queue, nj.Priority))
	nj.CreateIndex, nj.ModifyIndex = index, index
	if err := txn.Insert(tableJobs, nj); err != nil {
		return nil, false, fmt.Errorf("insert job %s: %w", j.ID, err)
	}
	return &RegisterJobResponse{ID: j.ID}, true, nil
}

func applyCancelJob(txn *memdb.Txn, index uint64, req *CancelJobRequest) error {
	raw, _ := txn.First(tableJobs, "id", req.JobID)
	if raw == nil {
		return fmt.Errorf("job %s: %w", req.JobID, ErrNotFound)
	}
	j := *raw.(*api.Job)
	if j.Terminal() {
		return fmt.Errorf("job %s is already %s: %w", j.ID, j.Status, ErrConflict)
	}
	j.Status = api.JobCancelled
	j.Reason = req.Reason
	j.EndTime = timePtr(req.Time)
	addEvent(&j, index, req.Time, api.EventCancelled, cmp.Or(req.Reason, "cancelled"))
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return err
	}
	if err := stopLiveAllocs(txn, index, j.ID, "", req.StopCause); err != nil {
		return err
	}
	return setIndex(txn, tableJobs, index)
}

// stopLiveAllocs asks every live allocation of a job, but skip, to stop,
// recording the command's cause (stopCause).
func stopLiveAllocs(txn *memdb.Txn, index uint64, jobID, skip, cause string) error {
	allocs := collect[*api.Allocation](nil, txn, tableAllocs, "job", jobID)
	changed := false
	for _, a := range allocs {
		if a.ID == skip || a.Terminal() || a.DesiredStatus == api.DesiredStop {
			continue
		}
		na := *a
		na.DesiredStatus = api.DesiredStop
		na.StopCause = stopCause(cause)
		na.ModifyIndex = index
		if err := txn.Insert(tableAllocs, &na); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return setIndex(txn, tableAllocs, index)
	}
	return nil
}

// reconcileJob derives a job's status from its allocations after one of
// them changed: a gang fails as a whole when any rank fails or is lost, and
// succeeds when every rank has. The ranks it stops take cause.
func reconcileJob(txn *memdb.Txn, index uint64, jobID string, now time.Time, cause string) error {
	raw, _ := txn.First(tableJobs, "id", jobID)
	if raw == nil {
		return nil
	}
	j := *raw.(*api.Job)
	if j.Terminal() {
		return nil
	}
	// Only the current attempt counts: allocations of earlier runs of a
	// restarted job ended already.
	var allocs []*api.Allocation
	for _, a := range collect[*api.Allocation](nil, txn, tableAllocs, "job", jobID) {
		if a.Attempt == j.RestartCount {
			allocs = append(allocs, a)
		}
	}
	succeeded := 0
	var failed *api.Allocation
	for _, a := range allocs {
		switch a.Status {
		case api.AllocSucceeded:
			succeeded++
		case api.AllocFailed, api.AllocLost:
			if failed == nil || a.Rank < failed.Rank {
				failed = a
			}
		}
	}
	switch {
	case failed != nil && j.RestartCount-j.Migrations-j.Preemptions < j.Spec.Restart.MaxRestarts:
		// The gang restarts whole: every live rank is stopped, and the
		// job goes back to the queue after its backoff, to be placed
		// again (on healthy nodes, when a node was lost).
		j.RestartCount++
		j.Status = api.JobPending
		j.Reason = fmt.Sprintf("restarting (%d of %d) after %s", j.RestartCount-j.Migrations-j.Preemptions, j.Spec.Restart.MaxRestarts, failureReason(failed))
		j.RestartAfter = timePtr(now.Add(time.Duration(j.Spec.Restart.Backoff)))
		addEvent(&j, index, now, api.EventRestarting, j.Reason)
		if err := stopLiveAllocs(txn, index, jobID, "", cause); err != nil {
			return err
		}
	case failed != nil:
		j.Status = api.JobFailed
		j.Reason = failureReason(failed)
		j.EndTime = timePtr(now)
		addEvent(&j, index, now, api.EventFailed, j.Reason)
		if err := stopLiveAllocs(txn, index, jobID, failed.ID, cause); err != nil {
			return err
		}
	case len(allocs) > 0 && succeeded == len(allocs):
		j.Status = api.JobSucceeded
		j.Reason = ""
		j.EndTime = timePtr(now)
		addEvent(&j, index, now, api.EventSucceeded, fmt.Sprintf("every rank succeeded (%d)", len(allocs)))
	default:
		return nil
	}
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return err
	}
	return setIndex(txn, tableJobs, index)
}

func failureReason(a *api.Allocation) string {
	if a.Status == api.AllocLost {
		msg := fmt.Sprintf("rank %d lost on node %s", a.Rank, a.Node)
		if a.Message != "" {
			msg += ": " + a.Message
		}
		return msg
	}
	msg := fmt.Sprintf("rank %d failed on node %s", a.Rank, a.Node)
	switch {
	case a.Signal != "":
		msg += ": killed by " + a.Signal
	case a.ExitCode != nil:
		msg += fmt.Sprintf(": exit code %d", *a.ExitCode)
	}
	if a.Message != "" {
		msg += " (" + a.Message + ")"
	}
	if t := reasonTail(a.StderrTail); t != "" {
		msg += "; stderr: " + t
	}
	return msg
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// requeue sends a running job back to the queue whole as its next attempt,
// asking its live allocations to stop. The caller counts why (Migrations,
// Preemptions): such restarts do not use up maxRestarts. Its allocations
// take cause.
func requeue(txn *memdb.Txn, index uint64, j *api.Job, reason, cause string) error {
	j.RestartCount++
	j.Status = api.JobPending
	j.Reason = reason
	j.RestartAfter = nil
	j.ModifyIndex = index
	if err := stopLiveAllocs(txn, index, j.ID, "", cause); err != nil {
		return err
	}
	return txn.Insert(tableJobs, j)
}

// pendingJob returns a job that a plan may still act for, or why not.
func pendingJob(txn *memdb.Txn, id string) (*api.Job, string) {
	raw, _ := txn.First(tableJobs, "id", id)
	if raw == nil {
		return nil, "job no longer exists"
	}
	j := raw.(*api.Job)
	if j.Status != api.JobPending {
		return nil, "job is " + j.Status + ", not pending"
	}
	return j, ""
}

func applyMigrateJobs(txn *memdb.Txn, index uint64, req *MigrateJobsRequest) error {
	changed := false
	for _, id := range req.JobIDs {
		raw, _ := txn.First(tableJobs, "id", id)
		if raw == nil {
			continue
		}
		j := *raw.(*api.Job)
		if j.Status != api.JobRunning {
			continue
		}
		addEvent(&j, index, req.Time, api.EventMigrated, cmp.Or(req.Reason, "moved off a draining node"))
		if j.Service {
			// A service moves replica by replica (apply_service.go).
			if err := migrateReplicas(txn, index, &j, req.NodeID, req.Reason, req.StopCause); err != nil {
				return err
			}
			changed = true
			continue
		}
		j.Migrations++
		if err := requeue(txn, index, &j, req.Reason, req.StopCause); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return setIndex(txn, tableJobs, index)
}

// applyGCJobs deletes the named jobs that are terminal, ended before
// req.Before and have no allocation still running (an agent that has not
// stopped a task yet keeps its job), with every allocation of theirs.
func applyGCJobs(txn *memdb.Txn, index uint64, req *GCJobsRequest) (*GCJobsResponse, error) {
	resp := &GCJobsResponse{}
	for _, id := range req.JobIDs {
		raw, _ := txn.First(tableJobs, "id", id)
		if raw == nil {
			continue
		}
		j := raw.(*api.Job)
		if !j.Terminal() || j.EndTime == nil || !j.EndTime.Before(req.Before) {
			continue
		}
		allocs := collect[*api.Allocation](nil, txn, tableAllocs, "job", id)
		live := false
		for _, a := range allocs {
			live = live || !a.Terminal()
		}
		if live {
			continue
		}
		for _, a := range allocs {
			if err := txn.Delete(tableAllocs, a); err != nil {
				return nil, fmt.Errorf("gc allocation %s: %w", a.ID, err)
			}
			resp.Allocs++
		}
		if err := deleteVersions(txn, id); err != nil {
			return nil, err
		}
		if err := txn.Delete(tableJobs, j); err != nil {
			return nil, fmt.Errorf("gc job %s: %w", id, err)
		}
		resp.Jobs++
	}
	if resp.Allocs > 0 {
		if err := setIndex(txn, tableAllocs, index); err != nil {
			return nil, err
		}
	}
	if resp.Jobs > 0 {
		if err := setIndex(txn, tableJobs, index); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// stopCause is the status a command's stop names, or none when it names
// none it knows (an entry written before stop causes, or by a newer
// version with a cause this one lacks: its allocations end as reported).
func stopCause(c string) string {
	if api.StopCauses[c] {
		return c
	}
	return ""
}
