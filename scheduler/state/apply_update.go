package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// Job updates and service rollouts. An update gives a job a new version
// of its spec; every version is kept (table job_versions, written from the
// first update on: a job never updated has only its spec). A pending job
// takes the new spec as it is. A running service keeps serving: the
// leader names the replicas the change leaves as they are (InPlace: their
// task, resources and topology are the same), and when any other replica
// serves, the update starts a deployment (api.Deployment) that the
// leader's passes advance with plan steps (RolloutStep): new replicas are
// placed next to old ones of the same rank (apply_service.go accepts them
// while the deployment runs) and an old replica is stopped once the new
// one of its rank is ready. Other running jobs cannot change.

const tableJobVersions = "job_versions"

// UpdateJobRequest gives JobID a new spec (defaulted and validated by the
// leader, catalog references resolved into Models).
type UpdateJobRequest struct {
	JobID string   `json:"jobId"`
	Spec  spec.Job `json:"spec"`
	// Version is the job's version the leader computed the update
	// against: a job updated meanwhile refuses it (the caller retries).
	Version int `json:"version"`
	// Rollout: some serving replica of a running service runs what the
	// new spec changes; InPlace are the serving allocations it leaves as
	// they are (they take the new version at once). Without Rollout every
	// serving replica does.
	Rollout bool           `json:"rollout,omitempty"`
	InPlace []string       `json:"inPlace,omitempty"`
	Models  []api.ModelRef `json:"models,omitempty"`
	Time    time.Time      `json:"time"`
}

// PromoteJobRequest lets a service's rollout of Version go on past its
// canaries.
type PromoteJobRequest struct {
	JobID   string    `json:"jobId"`
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
}

// RolloutStep advances the deployment of Version of a running service:
// Stop are old replicas whose rank a ready replica of Version serves now;
// Status ends the deployment (successful, or failed with Message: the
// leader's progress deadline); Message alone says where it stands.
type RolloutStep struct {
	JobID   string   `json:"jobId"`
	Version int      `json:"version"`
	Stop    []string `json:"stop,omitempty"`
	Status  string   `json:"status,omitempty"`
	Message string   `json:"message,omitempty"`
}

func versionsSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableJobVersions: {Name: tableJobVersions, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "JobID"}, &memdb.IntFieldIndex{Field: "Version"},
			}}},
			"job": {Name: "job", Indexer: &memdb.StringFieldIndex{Field: "JobID"}},
		}},
	}
}

// JobVersions returns every kept version of a job, oldest first; a job
// never updated has one, its spec.
func (s *Snapshot) JobVersions(ws memdb.WatchSet, jobID string) []*api.JobVersion {
	out := collect[*api.JobVersion](ws, s.txn, tableJobVersions, "job", jobID)
	if len(out) == 0 {
		if j := s.Job(ws, jobID); j != nil {
			out = append(out, firstVersion(j))
		}
	}
	slices.SortFunc(out, func(a, b *api.JobVersion) int { return a.Version - b.Version })
	return out
}

// JobVersion returns version v of a job's spec, or nil.
func (s *Snapshot) JobVersion(jobID string, v int) *api.JobVersion {
	return jobVersion(s.txn, jobID, v)
}

func jobVersion(txn *memdb.Txn, jobID string, v int) *api.JobVersion {
	if raw, _ := txn.First(tableJobVersions, "id", jobID, v); raw != nil {
		return raw.(*api.JobVersion)
	}
	raw, _ := txn.First(tableJobs, "id", jobID)
	if raw == nil || raw.(*api.Job).Version != v {
		return nil
	}
	return firstVersion(raw.(*api.Job))
}

// firstVersion is the record of a job's current spec before any update
// wrote one.
func firstVersion(j *api.Job) *api.JobVersion {
	return &api.JobVersion{JobID: j.ID, Version: j.Version, Spec: j.Spec, Stable: j.Deployment == nil,
		SubmitTime: j.SubmitTime, CreateIndex: j.CreateIndex, ModifyIndex: j.CreateIndex}
}

func putVersion(txn *memdb.Txn, index uint64, v *api.JobVersion) error {
	v.ModifyIndex = index
	if err := txn.Insert(tableJobVersions, v); err != nil {
		return err
	}
	return setIndex(txn, tableJobVersions, index)
}

// setVersionStatus records how version v's rollout ended.
func setVersionStatus(txn *memdb.Txn, index uint64, jobID string, v int, status, msg string, stable bool) error {
	cur := jobVersion(txn, jobID, v)
	if cur == nil {
		return nil
	}
	nv := *cur
	nv.Status, nv.Message = status, msg
	nv.Stable = nv.Stable || stable
	return putVersion(txn, index, &nv)
}

func applyUpdateJob(txn *memdb.Txn, index uint64, req *UpdateJobRequest) error {
	raw, _ := txn.First(tableJobs, "id", req.JobID)
	if raw == nil {
		return fmt.Errorf("job %s: %w", req.JobID, ErrNotFound)
	}
	j := *raw.(*api.Job)
	ns := req.Spec
	switch {
	case j.Terminal():
		return fmt.Errorf("job %s is %s: only a pending or running job can be updated: %w", j.ID, j.Status, ErrConflict)
	case req.Version != j.Version:
		return fmt.Errorf("job %s is at version %d, the update was made against version %d: %w", j.ID, j.Version, req.Version, ErrConflict)
	case ns.Name != j.Spec.Name || ns.Namespace != j.Spec.Namespace || ns.Kind != j.Spec.Kind:
		return fmt.Errorf("job %s: an update cannot change name, namespace or kind: %w", j.ID, ErrConflict)
	case j.Status == api.JobRunning && !j.Service:
		return fmt.Errorf("job %s is a running %s job: only services change while they run (cancel and resubmit it): %w", j.ID, j.Kind, ErrConflict)
	case j.Status == api.JobRunning && ns.Queue != j.Spec.Queue:
		return fmt.Errorf("job %s runs in queue %s: a running service cannot move to another queue: %w", j.ID, j.Spec.Queue, ErrConflict)
	}
	if first := jobVersion(txn, j.ID, j.Version); first != nil {
		if raw, _ := txn.First(tableJobVersions, "id", j.ID, j.Version); raw == nil {
			if err := putVersion(txn, index, first); err != nil {
				return err
			}
		}
	}
	if j.Deployment.Active() {
		d := *j.Deployment
		d.Status, d.Message, d.EndTime = api.DeploymentSuperseded, fmt.Sprintf("superseded by version %d", j.Version+1), timePtr(req.Time)
		j.Deployment = &d
		if err := setVersionStatus(txn, index, j.ID, d.Version, d.Status, d.Message, false); err != nil {
			return err
		}
	}
	j.Version++
	j.Spec = ns
	j.Priority = ns.Priority
	if req.Models != nil {
		j.Models = req.Models
	}
	rec := &api.JobVersion{JobID: j.ID, Version: j.Version, Spec: ns, SubmitTime: req.Time, CreateIndex: index}
	if j.Status == api.JobRunning {
		if err := updateReplicas(txn, index, &j, req); err != nil {
			return err
		}
		if req.Rollout {
			u := spec.UpdateOf(&ns)
			j.Deployment = &api.Deployment{Version: j.Version, Status: api.DeploymentRunning, Strategy: u,
				Promoted: u.Canary == 0, StartTime: req.Time, Progress: req.Time}
			rec.Status = api.DeploymentRunning
			j.Reason = fmt.Sprintf("rolling out version %d (%s)", j.Version, u)
		} else {
			j.StableVersion, rec.Stable = j.Version, true
			j.Reason = fmt.Sprintf("updated to version %d in place", j.Version)
		}
	} else {
		// A pending job waits with its new spec; the next pass explains it.
		j.StableVersion, rec.Stable = j.Version, true
		j.Reason = fmt.Sprintf("updated to version %d; waiting to be placed", j.Version)
		j.Reasons, j.CannotFit = nil, false
	}
	if err := putVersion(txn, index, rec); err != nil {
		return err
	}
	addEvent(&j, index, req.Time, api.EventUpdated, j.Reason)
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return err
	}
	return setIndex(txn, tableJobs, index)
}

// updateReplicas applies an update to a running service's allocations:
// ranks past the new replica count stop, and the replicas the update
// leaves as they are take the new version.
func updateReplicas(txn *memdb.Txn, index uint64, j *api.Job, req *UpdateJobRequest) error {
	changed := false
	for _, a := range collect[*api.Allocation](nil, txn, tableAllocs, "job", j.ID) {
		if !a.Serving() {
			continue
		}
		na := *a
		switch {
		case a.Rank >= j.Spec.Replicas:
			na.DesiredStatus = api.DesiredStop
			na.StopCause = api.AllocStopped
		case !req.Rollout || slices.Contains(req.InPlace, a.ID):
			// It runs the new version as it is: the leader found its task
			// unchanged but for what a replica takes while it runs (a
			// builtin server's rules), which its agent passes on.
			na.JobVersion = j.Version
			na.Task = j.Spec.Task
		default:
			continue
		}
		na.ModifyIndex = index
		if err := txn.Insert(tableAllocs, &na); err != nil {
			return err
		}
		changed = true
	}
	recs := j.ServiceReplicas[:0:0]
	for _, r := range j.ServiceReplicas {
		if r.Rank < j.Spec.Replicas {
			recs = append(recs, r)
		}
	}
	j.ServiceReplicas = recs
	if changed {
		return setIndex(txn, tableAllocs, index)
	}
	return nil
}

func applyPromoteJob(txn *memdb.Txn, index uint64, req *PromoteJobRequest) error {
	raw, _ := txn.First(tableJobs, "id", req.JobID)
	if raw == nil {
		return fmt.Errorf("job %s: %w", req.JobID, ErrNotFound)
	}
	j := *raw.(*api.Job)
	d := j.Deployment
	switch {
	case !d.Active():
		return fmt.Errorf("job %s has no rollout in progress: %w", j.ID, ErrConflict)
	case d.Version != req.Version:
		return fmt.Errorf("job %s is rolling out version %d, not %d: %w", j.ID, d.Version, req.Version, ErrConflict)
	case d.Promoted:
		return fmt.Errorf("job %s: version %d has no canaries waiting (already promoted or none asked): %w", j.ID, d.Version, ErrConflict)
	}
	nd := *d
	nd.Promoted, nd.Progress = true, req.Time
	nd.Message = "canaries promoted; rolling out the other replicas"
	j.Deployment = &nd
	addEvent(&j, index, req.Time, api.EventRollout, fmt.Sprintf("version %d: %s", nd.Version, nd.Message))
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return err
	}
	return setIndex(txn, tableJobs, index)
}

// checkRollout re-checks a rollout step against the current state: the
// deployment still runs, and each replica it stops is an older one whose
// rank a ready replica of the new version serves.
func checkRollout(txn *memdb.Txn, st RolloutStep) (*api.Job, string) {
	j := runningService(txn, st.JobID)
	switch {
	case j == nil:
		return nil, "not a running service"
	case !j.Deployment.Active() || j.Deployment.Version != st.Version:
		return nil, fmt.Sprintf("no rollout of version %d in progress (stale plan)", st.Version)
	}
	switch st.Status {
	case "", api.DeploymentSuccessful, api.DeploymentFailed:
	default:
		return nil, fmt.Sprintf("rollout status %q is not one a plan sets", st.Status)
	}
	allocs := collect[*api.Allocation](nil, txn, tableAllocs, "job", j.ID)
	readyNew := map[int]bool{}
	for _, a := range allocs {
		if a.Serving() && a.JobVersion == st.Version && a.Ready {
			readyNew[a.Rank] = true
		}
	}
	for _, id := range st.Stop {
		i := slices.IndexFunc(allocs, func(a *api.Allocation) bool { return a.ID == id })
		switch {
		case i < 0:
			return nil, fmt.Sprintf("allocation %s is not one of the job's", id)
		case !allocs[i].Serving():
			return nil, fmt.Sprintf("allocation %s no longer serves (stale plan)", id)
		case allocs[i].JobVersion >= st.Version:
			return nil, fmt.Sprintf("allocation %s runs version %d, not an older one", id, allocs[i].JobVersion)
		case !readyNew[allocs[i].Rank] && !j.Deployment.Strategy.StopFirst:
			return nil, fmt.Sprintf("replica %d has no ready replica of version %d to take over from %s", allocs[i].Rank, st.Version, id)
		}
	}
	return j, ""
}

// applyRollout commits a checked rollout step.
func applyRollout(txn *memdb.Txn, index uint64, st RolloutStep, now time.Time) (string, error) {
	cur, why := checkRollout(txn, st)
	if why != "" {
		return why, nil
	}
	j := *cur
	d := *j.Deployment
	for _, id := range st.Stop {
		raw, _ := txn.First(tableAllocs, "id", id)
		na := *raw.(*api.Allocation)
		na.DesiredStatus = api.DesiredStop
		na.StopCause = api.AllocStopped
		na.ModifyIndex = index
		if err := txn.Insert(tableAllocs, &na); err != nil {
			return "", err
		}
		d.Progress = now
	}
	if len(st.Stop) > 0 {
		if err := setIndex(txn, tableAllocs, index); err != nil {
			return "", err
		}
	}
	if st.Message != "" {
		d.Message = st.Message
	}
	j.Deployment = &d
	if len(st.Stop) > 0 && st.Status != api.DeploymentSuccessful && st.Status != api.DeploymentFailed {
		msg := fmt.Sprintf("rollout of version %d: replacing %d replica(s)", d.Version, len(st.Stop))
		if st.Message != "" {
			msg += ": " + st.Message
		}
		addEvent(&j, index, now, api.EventRollout, msg)
	}
	switch st.Status {
	case api.DeploymentSuccessful:
		d.Status, d.EndTime = api.DeploymentSuccessful, timePtr(now)
		j.StableVersion = d.Version
		j.Reason = fmt.Sprintf("version %d rolled out", d.Version)
		addEvent(&j, index, now, api.EventRollout, j.Reason)
		if err := setVersionStatus(txn, index, j.ID, d.Version, d.Status, d.Message, true); err != nil {
			return "", err
		}
	case api.DeploymentFailed:
		if err := failDeployment(txn, index, &j, st.Message, now); err != nil {
			return "", err
		}
	}
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return "", err
	}
	return "", setIndex(txn, tableJobs, index)
}

// failDeployment ends j's rollout as failed (j is a copy the caller
// stores) and, with AutoRevert, starts one back to the newest stable
// version: the replicas of that version take the new one in place, and
// the others are rolled back like any update.
func failDeployment(txn *memdb.Txn, index uint64, j *api.Job, msg string, now time.Time) error {
	d := *j.Deployment
	d.Status, d.Message, d.EndTime = api.DeploymentFailed, msg, timePtr(now)
	j.Deployment = &d
	j.Reason = fmt.Sprintf("rollout of version %d failed: %s", d.Version, msg)
	addEvent(j, index, now, api.EventRollout, j.Reason)
	if err := setVersionStatus(txn, index, j.ID, d.Version, d.Status, msg, false); err != nil {
		return err
	}
	target := jobVersion(txn, j.ID, j.StableVersion)
	if !d.Strategy.AutoRevert || target == nil || j.StableVersion >= d.Version {
		return nil
	}
	j.Version++
	j.Spec = target.Spec
	j.Priority = target.Spec.Priority
	inPlace := []string{}
	for _, a := range collect[*api.Allocation](nil, txn, tableAllocs, "job", j.ID) {
		if a.Serving() && a.JobVersion == target.Version {
			inPlace = append(inPlace, a.ID)
		}
	}
	if err := updateReplicas(txn, index, j, &UpdateJobRequest{Rollout: true, InPlace: inPlace}); err != nil {
		return err
	}
	j.Deployment = &api.Deployment{Version: j.Version, Status: api.DeploymentRunning, Strategy: spec.UpdateOf(&target.Spec),
		Promoted: true, RevertOf: d.Version, StartTime: now, Progress: now,
		Message: fmt.Sprintf("reverting to version %d: the rollout of version %d failed", target.Version, d.Version)}
	j.Reason = fmt.Sprintf("rollout of version %d failed (%s); reverting to version %d as version %d", d.Version, msg, target.Version, j.Version)
	addEvent(j, index, now, api.EventRollout, j.Reason)
	return putVersion(txn, index, &api.JobVersion{JobID: j.ID, Version: j.Version, Spec: target.Spec, SubmitTime: now,
		Status: api.DeploymentRunning, Message: fmt.Sprintf("revert to version %d", target.Version), RevertTo: &target.Version, CreateIndex: index})
}

// deleteVersions forgets a collected job's versions.
func deleteVersions(txn *memdb.Txn, jobID string) error {
	if _, err := txn.DeleteAll(tableJobVersions, "job", jobID); err != nil {
		return fmt.Errorf("gc versions of job %s: %w", jobID, err)
	}
	return nil
}
