package sched

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
)

// Services (api.Job.Service: inference jobs) keep running while their
// replicas come and go: a pass places each rank no allocation serves
// (api.Allocation.Serving), once its restart backoff has passed, as a
// one-replica placement for the running job, and the FSM accepts it only
// for a missing rank (scheduler/state/apply_service.go). The replacement
// comes before pending work: the service was admitted already, and its
// other replicas keep serving meanwhile. It never preempts; a replica
// that fits nowhere waits for capacity.

// ServiceView is what a View offers when it holds services: the running
// ones. A View without it (the trace simulator's) has none.
type ServiceView interface {
	Services() []*api.Job
}

func (v snapView) Services() []*api.Job { return v.s.RunningServices() }

// missingReplica is one rank of a running service to replace.
type missingReplica struct {
	job  *api.Job
	rank int
}

// missingReplicas returns, for each running service, its lowest rank that
// no allocation serves and whose backoff has passed at now (one per
// service and pass: the commit wakes the next pass for the next rank);
// a backoff still running sets wake.
func missingReplicas(v View, now time.Time, wake func(time.Time)) []missingReplica {
	sv, ok := v.(ServiceView)
	if !ok {
		return nil
	}
	services := sv.Services()
	if len(services) == 0 {
		return nil
	}
	serving := map[string]map[int]bool{}
	for _, a := range v.LiveAllocs() {
		if a.Serving() {
			if serving[a.JobID] == nil {
				serving[a.JobID] = map[int]bool{}
			}
			serving[a.JobID][a.Rank] = true
		}
	}
	var out []missingReplica
	for _, j := range services {
		for r := range j.Spec.Replicas {
			if serving[j.ID][r] {
				continue
			}
			if after := j.Replica(r).RestartAfter; after != nil && after.After(now) {
				wake(*after)
				continue
			}
			out = append(out, missingReplica{job: j, rank: r})
			break
		}
	}
	return out
}

// scaledToZero takes the pending services with no replicas out of
// pending: each is placed with no allocations (it runs, scaled to zero).
func scaledToZero(pending []*api.Job) ([]*api.Job, []state.JobPlacement) {
	var zero []state.JobPlacement
	kept := pending[:0:0]
	for _, j := range pending {
		if j.Service && j.Spec.Replicas == 0 {
			zero = append(zero, state.JobPlacement{JobID: j.ID})
			continue
		}
		kept = append(kept, j)
	}
	return kept, zero
}

// replaceReplicas places the missing replicas on nodes (the eligible
// ones) around live and the holds, and returns the placements with live
// grown by the new allocations (for the rest of the pass to count).
func replaceReplicas(cfg *Config, missing []missingReplica, nodes []*api.Node, byID map[string]*api.Node,
	nodeAddr map[string]string, live []*api.Allocation, hs []placement.Hold, rng *rand.Rand) ([]state.JobPlacement, []*api.Allocation) {
	byJob := map[string]missingReplica{}
	one := make([]*api.Job, 0, len(missing))
	for _, m := range missing {
		// The placement engine places whole jobs: ask it for a job of
		// one replica with the service's resources and topology.
		c := *m.job
		c.Spec.Replicas = 1
		c.Preempting, c.HeldNodes, c.HoldUntil = nil, nil, nil
		// One entry per rank: a rollout places several ranks of a job.
		c.ID = fmt.Sprintf("%s#%d", c.ID, m.rank)
		one = append(one, &c)
		byJob[c.ID] = m
	}
	res := placement.Place(placement.Input{Nodes: nodes, Allocs: live, Pending: one, Holds: hs})
	used := usedPorts(live, nodeAddr)
	var out []state.JobPlacement
	grown := slices.Clone(live)
	for _, p := range res.Placements {
		m, ok := byJob[p.JobID]
		if !ok || len(p.Assignments) != 1 {
			continue
		}
		asg := p.Assignments[0]
		n := byID[asg.NodeID]
		port := used.free(n.Address, rng)
		if port == 0 {
			continue // no free service port there: the next pass tries again
		}
		var b [2]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		j := m.job
		a := &api.Allocation{
			ID:             fmt.Sprintf("%s-%d-%s", j.ID, m.rank, hex.EncodeToString(b[:])),
			JobID:          j.ID,
			NodeID:         n.ID,
			Node:           n.Name,
			Rank:           m.rank,
			WorldSize:      j.Spec.Replicas,
			LocalWorldSize: 1,
			GPUs:           asg.GPUs,
			GPUMilli:       p.Request.GPUMilli,
			GPUMemoryBytes: p.Request.Allocation("", n, asg.GPUs).GPUMemoryBytes,
			CPUMilli:       p.Request.CPUMilli,
			MemoryBytes:    p.Request.MemoryBytes,
			Port:           port,
			// A service replica's attempt is its own restart count.
			Attempt:       j.Replica(m.rank).Restarts,
			JobVersion:    j.Version,
			Kind:          j.Kind,
			Task:          j.Spec.Task,
			Checkpoint:    j.Spec.Checkpoint,
			CheckpointURI: CheckpointURI(cfg.CheckpointStore, j),
			Status:        api.AllocPending,
			DesiredStatus: api.DesiredRun,
		}
		out = append(out, state.JobPlacement{JobID: j.ID, Allocs: []*api.Allocation{a}})
		grown = append(grown, a)
	}
	return out, grown
}
