package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// ScaleJobRequest sets a running service's replica count (its
// autoscaler's decision, or a request that woke a service scaled to
// zero). It changes the spec in place, not as a new version: scaling is
// not a change of what the service runs.
type ScaleJobRequest struct {
	JobID    string    `json:"jobId"`
	Replicas int       `json:"replicas"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
}

func applyScaleJob(txn *memdb.Txn, index uint64, req *ScaleJobRequest) error {
	j0 := runningService(txn, req.JobID)
	switch {
	case j0 == nil:
		return fmt.Errorf("job %s is not a running service: %w", req.JobID, ErrConflict)
	case req.Replicas < 0 || req.Replicas > spec.MaxReplicas:
		return fmt.Errorf("job %s: %d replicas is out of range (0..%d): %w", req.JobID, req.Replicas, spec.MaxReplicas, ErrConflict)
	case req.Replicas == j0.Spec.Replicas:
		return nil
	}
	j := *j0
	from := j.Spec.Replicas
	j.Spec.Replicas = req.Replicas
	// Ranks past the new count stop; the others keep their version.
	if err := updateReplicas(txn, index, &j, &UpdateJobRequest{Rollout: true}); err != nil {
		return err
	}
	j.LastScale = &api.ScaleEvent{From: from, To: req.Replicas, Reason: req.Reason, Time: req.Time}
	j.Reason = fmt.Sprintf("scaled from %d to %d replicas: %s", from, req.Replicas, req.Reason)
	addEvent(&j, index, req.Time, api.EventScaled, j.Reason)
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return err
	}
	return setIndex(txn, tableJobs, index)
}
