package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// Job updates: PUT /v1/jobs/{id} gives a job a new version of its spec
// (the same body as a submission; ?version=N refuses the update when the
// job has moved past version N), POST /v1/jobs/{id}/promote lets a
// service's rollout go on past its canaries, GET /v1/jobs/{id}/versions
// lists every version. The leader decides which of a running service's
// replicas the change leaves as they are (sched.ReplicaChanged: a change
// of rules, or of adapters whose local paths the replicas may already
// read); the FSM rolls out the others (scheduler/state/apply_update.go).

func (s *Server) handleUpdateJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	snap := s.store.Snapshot()
	j := snap.Job(nil, id)
	if err := principalOf(r.Context()).jobAccess(j, id, api.CapUpdate); err != nil {
		s.fail(w, r, err)
		return
	}
	js, refs, ok := s.requestSpec(w, r, &j.Spec)
	if !ok {
		return
	}
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.fail(w, r, &httpError{http.StatusBadRequest, fmt.Errorf("version=%q is not a number", v)})
			return
		}
		if n != j.Version {
			s.fail(w, r, &httpError{http.StatusConflict, fmt.Errorf("job %s is at version %d, not %d: look at `ark job history %s` and update again", id, j.Version, n, id)})
			return
		}
	}
	resp, err := s.commitUpdate(r.Context(), snap, j, js, refs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// commitUpdate gives job j (as snap has it) the checked spec js, with
// refs its catalog references: the path of every update, PUT
// /v1/jobs/{id} and an adapter added or removed (services_adapters.go)
// alike. It decides which serving replicas take the change in place.
func (s *Server) commitUpdate(ctx context.Context, snap *state.Snapshot, j *api.Job, js *spec.Job, refs []api.ModelRef) (*api.UpdateResponse, error) {
	if why := updateRefusal(j, js.Name, js.Namespace, js.Kind, js.Queue); why != "" {
		return nil, &httpError{http.StatusConflict, fmt.Errorf("job %s: %s", j.ID, why)}
	}
	if a := js.Autoscale; a != nil && j.Status == api.JobRunning {
		// The autoscaler owns the count: an update keeps the current one
		// (within the new bounds).
		js.Replicas = a.Clamp(j.Spec.Replicas)
	}
	req := &state.UpdateJobRequest{JobID: j.ID, Spec: *js, Version: j.Version, Models: refs, Time: time.Now().UTC()}
	var newPaths []string
	// The driver confines a replica with the same directory, found from
	// its ARK_CHECKPOINT_URI (spec.SharedCheckpointDir).
	ckptDir := spec.LocalPath(s.cfg.CheckpointStore)
	if j.Status == api.JobRunning {
		for _, a := range snap.AllocsByJob(nil, j.ID) {
			if !a.Serving() {
				continue
			}
			old := snap.JobVersion(j.ID, a.JobVersion)
			if old == nil || sched.ReplicaChanged(&old.Spec, js, ckptDir) {
				req.Rollout = true
				if old != nil {
					newPaths = append(newPaths, sched.NewReadRoots(&old.Spec, js, ckptDir)...)
				}
			} else {
				req.InPlace = append(req.InPlace, a.ID)
			}
		}
	}
	_, idx, err := s.apply(ctx, state.UpdateJobType, req)
	if err != nil {
		return nil, err
	}
	slices.Sort(newPaths)
	return &api.UpdateResponse{ID: j.ID, Version: j.Version + 1, Rollout: req.Rollout, InPlace: len(req.InPlace),
		NewPaths: slices.Compact(newPaths), Index: idx}, nil
}

// updateRefusal says why a job cannot take a spec with these fields
// (the FSM checks the same; saying it here answers before a Raft write).
func updateRefusal(j *api.Job, name, ns, kind, queue string) string {
	switch {
	case j.Terminal():
		return fmt.Sprintf("it is %s: only a pending or running job can be updated", j.Status)
	case name != j.Spec.Name || ns != j.Spec.Namespace || kind != j.Spec.Kind:
		return fmt.Sprintf("an update cannot change name, namespace or kind (the job is %s/%s, a %s job)", j.Spec.Namespace, j.Spec.Name, j.Spec.Kind)
	case j.Status == api.JobRunning && !j.Service:
		return fmt.Sprintf("it is a running %s job: only services (inference jobs) change while they run; cancel and resubmit it", j.Kind)
	case j.Status == api.JobRunning && queue != j.Spec.Queue:
		return fmt.Sprintf("it runs in queue %s: a running service cannot move to queue %s", j.Spec.Queue, queue)
	}
	return ""
}

func (s *Server) handlePromoteJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j := s.store.Snapshot().Job(nil, id)
	if err := principalOf(r.Context()).jobAccess(j, id, api.CapUpdate); err != nil {
		s.fail(w, r, err)
		return
	}
	if !j.Deployment.Active() || j.Deployment.Promoted {
		s.fail(w, r, &httpError{http.StatusConflict, fmt.Errorf("job %s has no canaries waiting for a promotion", id)})
		return
	}
	_, idx, err := s.apply(r.Context(), state.PromoteJobType, &state.PromoteJobRequest{JobID: id, Version: j.Deployment.Version, Time: time.Now().UTC()})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.UpdateResponse{ID: id, Version: j.Deployment.Version, Rollout: true, Index: idx})
}

func (s *Server) handleJobVersions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := principalOf(r.Context())
	s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		j := snap.Job(ws, id)
		if j == nil || !p.canNamespace(j.Namespace) {
			return 0, nil, hiddenJob(id)
		}
		return max(snap.Index(state.TableJobs), snap.Index(state.TableJobVersions)), snap.JobVersions(ws, id), nil
	})
}
