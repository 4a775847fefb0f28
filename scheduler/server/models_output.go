package server

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// The leader registers each succeeded finetune job's result in the
// catalog (spec.output.model) as a new version with its lineage. The job
// records the version it became (api.Job.Output) in the same commit, so a
// new leader after a failover picks up exactly the results not yet
// registered; a registration retried after a lost answer is recognised
// by the FSM (same job, same checkpoint) and not made twice.

// outputPass registers the results of succeeded jobs that name an output
// model and have not been registered.
func (s *Server) outputPass(ctx context.Context, now time.Time, skipped map[string]bool) {
	snap := s.store.Snapshot()
	for _, j := range snap.JobsByStatus(nil, api.JobSucceeded) {
		if j.Spec.Output == nil || j.Output != "" || skipped[j.ID] {
			continue
		}
		req, why := outputVersion(j, snap.AllocsByJob(nil, j.ID))
		if req == nil {
			// Said once: the job's record will not change.
			skipped[j.ID] = true
			s.log.Warn("a succeeded job's result cannot be registered in the catalog", zap.String("job", j.ID),
				zap.String("model", j.Spec.Output.Model), zap.String("why", why))
			continue
		}
		resp, _, err := s.apply(ctx, state.ModelRegisterType, &state.ModelRegisterRequest{Model: *req, Time: now})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("registering a job's result in the catalog failed", zap.String("job", j.ID), zap.Error(err))
			}
			continue
		}
		if r, ok := resp.(*api.ModelRegisterResponse); ok {
			s.log.Info("registered a job's result in the catalog", zap.String("job", j.ID),
				zap.String("model", r.Name), zap.Int("version", r.Version))
		}
	}
}

// evalPass files the results of succeeded eval jobs in the catalog,
// against the versions their candidates named (model://...). Results go
// only to models of the job's own namespace: a task reports its own
// figures, and a tenant must not write another's records (a public
// model's included).
func (s *Server) evalPass(ctx context.Context) {
	snap := s.store.Snapshot()
	for _, j := range snap.JobsByStatus(nil, api.JobSucceeded) {
		if j.Kind != spec.KindEval || len(j.Models) == 0 || j.EvalsRecorded {
			continue
		}
		req := evalRecords(j, snap.AllocsByJob(nil, j.ID))
		if _, _, err := s.apply(ctx, state.ModelEvalType, req); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("filing an eval job's results in the catalog failed", zap.String("job", j.ID), zap.Error(err))
			}
			continue
		}
		s.log.Info("filed an eval job's results in the catalog", zap.String("job", j.ID), zap.Int("versions", len(req.Evals)))
	}
}

// evalRecords matches an eval job's reported results to the catalog
// versions its base list resolved to, by the checkpoint each evaluated.
func evalRecords(j *api.Job, allocs []*api.Allocation) *state.ModelEvalRequest {
	req := &state.ModelEvalRequest{JobID: j.ID}
	// Each rank scored its share of the candidates; a rank's latest
	// attempt speaks for it.
	latest := map[int]*api.Allocation{}
	for _, a := range allocs {
		if l := latest[a.Rank]; len(a.Evals) > 0 && (l == nil || a.CreateIndex > l.CreateIndex) {
			latest[a.Rank] = a
		}
	}
	var results []api.EvalResult
	for r := range len(allocs) + 1 {
		if a := latest[r]; a != nil {
			results = append(results, a.Evals...)
		}
	}
	for _, ref := range j.Models {
		if ref.Namespace != j.Namespace || !strings.HasPrefix(ref.Field, "task.builtin.base") {
			continue
		}
		for _, r := range results {
			if r.Checkpoint != ref.URI {
				continue
			}
			r.Job = j.ID
			if j.EndTime != nil {
				r.Time = *j.EndTime
			}
			req.Evals = append(req.Evals, state.VersionEvals{Namespace: ref.Namespace, Name: ref.Model, Version: ref.Version, Results: []api.EvalResult{r}})
			break
		}
	}
	return req
}

// outputVersion is the registration of a succeeded job's result: its
// rank 0's last checkpoint, with where it came from. It says why not when
// the job left no checkpoint.
func outputVersion(j *api.Job, allocs []*api.Allocation) (*api.ModelRegisterRequest, string) {
	var last *api.Allocation
	for _, a := range allocs {
		if a.Rank == 0 && a.LastCheckpoint != nil && (last == nil || a.CreateIndex > last.CreateIndex) {
			last = a
		}
	}
	if last == nil {
		return nil, "its rank 0 reported no checkpoint (a finetune job needs a checkpoint store to register its result)"
	}
	b := j.Spec.Task.Builtin
	l := &api.Lineage{Job: j.ID, Method: api.MethodFull, Steps: int(last.LastCheckpoint.Step)}
	req := &api.ModelRegisterRequest{
		Name: j.Spec.Output.Model, Namespace: j.Namespace, Description: j.Spec.Output.Description,
		URI: last.LastCheckpoint.URI, Lineage: l,
	}
	if b != nil {
		req.Arch = api.ModelArch{Family: "gpt2", Preset: b.Model}
		l.Data = b.Data
		if b.LoRA != nil {
			req.Adapter, l.Method, l.Rank = true, api.MethodLoRA, b.LoRA.Rank
		}
		l.Parent = parentRef(j, b)
	}
	if loss, ok := lossOf(last.Progress); ok {
		l.FinalLoss = &loss
	}
	return req, ""
}

// parentRef names what the job trained from: the catalog version its base
// resolved to, else the base checkpoint itself.
func parentRef(j *api.Job, b *spec.BuiltinTask) string {
	for _, r := range j.Models {
		if r.Field == "task.builtin.base" || r.Field == "task.builtin.base[0]" {
			return r.Model + "@" + strconv.Itoa(r.Version)
		}
	}
	return b.Base
}

// lossRE finds the loss in a trainer's progress line ("step 150/150 loss
// 1.92 ...").
var lossRE = regexp.MustCompile(`\bloss[ =:]+([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)`)

func lossOf(progress string) (float64, bool) {
	m := lossRE.FindStringSubmatch(progress)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}
