package server

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/sched"
	"github.com/ark-sched/ark/scheduler/spec"
)

// handleValidateJob answers what the scheduler would do with a spec on the
// cluster as it is now, had it been submitted: the leader's own pass
// (sched.Pass, with its queues, preemption and backfill settings) runs on
// the current snapshot with the spec as the only pending job, and nothing
// is committed. It is a POST routed to the leader (writeHandler) because
// only the leader's configuration is the one that places jobs; the token
// must be one that may submit the spec (authorizeSpec), as for a submit.
func (s *Server) handleValidateJob(w http.ResponseWriter, r *http.Request) {
	js, _, ok := s.submittedSpec(w, r)
	if !ok {
		return
	}
	now := time.Now().UTC()
	job := &api.Job{
		// Not a real ID: no job of the store can take it (IDs carry a
		// random suffix after the name), so the pass cannot mix them up.
		ID: js.Name + "-(validate)", Name: js.Name, Namespace: js.Namespace, Queue: js.Queue,
		Kind: js.Kind, Priority: js.Priority, Spec: *js, Status: api.JobPending,
		SubmitTime: now, Service: js.Kind == spec.KindInference,
	}
	v := oneJobView{View: sched.FromSnapshot(s.store.Snapshot()), job: job}
	out := sched.Pass(v, s.schedConfig(), sched.Input{Now: now, Rand: rand.New(rand.NewPCG(uint64(now.UnixNano()), 0))})
	writeJSON(w, http.StatusOK, validation(job.ID, out))
}

// validation reads what a pass planned for job id.
func validation(id string, out sched.Output) api.Validation {
	var res api.Validation
	for _, p := range out.Plan.Placements {
		if p.JobID == id {
			res.Fits = true
		}
	}
	for _, p := range out.Plan.Preemptions {
		if p.JobID == id {
			res.Fits = true
			res.Preempts = append(res.Preempts, p.Victims...)
		}
	}
	for _, p := range out.Plan.Pending {
		if p.JobID == id && !res.Fits {
			res.Reason, res.Reasons, res.CannotFit = p.Reason, p.Reasons, p.Never
		}
	}
	if !res.Fits && res.Reason == "" {
		// A pass that neither places nor explains a job leaves it for a
		// later pass (a restart backoff, a hold): say so rather than
		// nothing.
		res.Reason = "the scheduler would not place it now"
	}
	return res
}

// oneJobView is the state as the leader sees it, with one more pending
// job and no other: the pass answers for that job alone. Running jobs,
// nodes, holds and quotas are the snapshot's.
type oneJobView struct {
	sched.View
	job *api.Job
}

func (v oneJobView) Job(id string) *api.Job {
	if id == v.job.ID {
		return v.job
	}
	return v.View.Job(id)
}

func (v oneJobView) Pending(uint64) []*api.Job { return []*api.Job{v.job} }

func (v oneJobView) Holding() []*api.Job { return nil }
