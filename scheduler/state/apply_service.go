package state

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// Services (api.Job.Service, set by the leader on inference jobs) are not
// gangs: each replica (rank) lives on its own. A replica whose task ends
// by itself is counted on its rank and replaced after an exponential
// backoff, forever (a crash loop is shown on the job, it does not end
// it); one lost with its node, preempted or moved off a draining node is
// replaced at once, uncounted. The job stays running throughout; the
// leader places a rank no allocation serves (api.Allocation.Serving) as a
// plan placement for the running job, which the FSM accepts only for
// missing ranks whose backoff has passed.
//
// Every rule here reads the Service flag the command carried, never the
// kind: a log written before services existed replays as gangs. The two
// constants below are part of the log's meaning and never change; a new
// policy needs a new field in the job, set by the leader.
const (
	// serviceBackoffCap bounds a replica's restart backoff (Kubernetes'
	// CrashLoopBackOff cap).
	serviceBackoffCap = 5 * time.Minute
	// serviceBackoffReset is the run after which a replica's next restart
	// starts its backoff over.
	serviceBackoffReset = 10 * time.Minute
)

// serviceBackoff is the wait before the streak-th restart in a row:
// base, 2 base, 4 base, ... up to serviceBackoffCap.
func serviceBackoff(base time.Duration, streak int) time.Duration {
	d := max(base, 0)
	for i := 1; i < streak && d < serviceBackoffCap; i++ {
		d *= 2
	}
	return min(d, serviceBackoffCap)
}

// runningService returns the job id names when it is a running service
// (a plan placement for it replaces missing replicas).
func runningService(txn *memdb.Txn, id string) *api.Job {
	raw, _ := txn.First(tableJobs, "id", id)
	if raw == nil {
		return nil
	}
	j := raw.(*api.Job)
	if !j.Service || j.Status != api.JobRunning {
		return nil
	}
	return j
}

// serviceAllocEnded records the end of allocation a (just written) on its
// service and reports whether a belongs to a service at all (the caller
// then leaves the gang rules out).
func serviceAllocEnded(txn *memdb.Txn, index uint64, a *api.Allocation, now time.Time) (bool, error) {
	raw, _ := txn.First(tableJobs, "id", a.JobID)
	if raw == nil || !raw.(*api.Job).Service {
		return false, nil
	}
	j := *raw.(*api.Job)
	if j.Status != api.JobRunning || !a.Terminal() {
		return true, nil
	}
	switch {
	case a.Status == api.AllocLost:
		// Not the replica's doing: replaced at once, not counted.
		j.Reason = fmt.Sprintf("replica %d lost on node %s; replacing it", a.Rank, a.Node)
		addEvent(&j, index, now, api.EventReplica, j.Reason)
	case a.DesiredStatus == api.DesiredStop:
		// The scheduler stopped it (preemption, drain, cancel): its
		// rank was given up when the stop was asked.
		return true, nil
	default:
		r := j.Replica(a.Rank)
		r.Restarts++
		r.Streak++
		if a.StartTime != nil && a.FinishTime != nil && a.FinishTime.Sub(*a.StartTime) >= serviceBackoffReset {
			r.Streak = 1
		}
		wait := serviceBackoff(time.Duration(j.Spec.Restart.Backoff), r.Streak)
		r.RestartAfter = timePtr(now.Add(wait))
		r.LastExitCode, r.LastSignal, r.LastMessage = nil, a.Signal, a.Message
		if a.ExitCode != nil {
			code := *a.ExitCode
			r.LastExitCode = &code
		}
		j.Reason = fmt.Sprintf("replica %d restarting in %s (restart %d, %d in a row) after %s", a.Rank, wait, r.Restarts, r.Streak, replicaEnd(a))
		addEvent(&j, index, now, api.EventReplica, j.Reason)
		setReplica(&j, r)
		if j.Deployment.Active() && a.JobVersion == j.Deployment.Version {
			// A new replica that ends by itself fails its rollout.
			msg := fmt.Sprintf("replica %d of version %d ended: %s", a.Rank, a.JobVersion, replicaEnd(a))
			if err := failDeployment(txn, index, &j, msg, now); err != nil {
				return true, err
			}
		}
	}
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return true, err
	}
	return true, setIndex(txn, tableJobs, index)
}

// replicaEnd says how a replica's task ended.
func replicaEnd(a *api.Allocation) string {
	msg := fmt.Sprintf("its task on node %s", a.Node)
	switch {
	case a.Signal != "":
		msg += " was killed by " + a.Signal
	case a.ExitCode != nil:
		msg += fmt.Sprintf(" exited with code %d", *a.ExitCode)
	default:
		msg += " " + a.Status
	}
	if a.Message != "" {
		msg += " (" + a.Message + ")"
	}
	return msg
}

// setReplica stores r in j's records (a copy of the slice: j is a copy of
// a stored job, whose slice the store shares).
func setReplica(j *api.Job, r api.ServiceReplica) {
	recs := slices.Clone(j.ServiceReplicas)
	i := slices.IndexFunc(recs, func(x api.ServiceReplica) bool { return x.Rank == r.Rank })
	if i < 0 {
		recs = append(recs, r)
		slices.SortFunc(recs, func(a, b api.ServiceReplica) int { return a.Rank - b.Rank })
	} else {
		recs[i] = r
	}
	j.ServiceReplicas = recs
}

// servingVersions are, by rank, the spec versions of a service's serving
// allocations.
func servingVersions(txn *memdb.Txn, jobID string) map[int][]int {
	out := map[int][]int{}
	for _, a := range collect[*api.Allocation](nil, txn, tableAllocs, "job", jobID) {
		if a.Serving() {
			out[a.Rank] = append(out[a.Rank], a.JobVersion)
		}
	}
	return out
}

// checkReplacement re-checks a placement of missing replicas of running
// service j against the current state, with the checks that never change
// between versions.
func checkReplacement(txn *memdb.Txn, loads map[string]*nodeLoad, ports map[portKey]bool, j *api.Job, p JobPlacement, now time.Time) string {
	if len(p.Allocs) == 0 {
		return "plan places no replica of a running service"
	}
	serving := servingVersions(txn, j.ID)
	tentative := map[string]*nodeLoad{}
	seen := map[int]bool{}
	ids := map[string]bool{}
	for _, a := range p.Allocs {
		if ex, _ := txn.First(tableAllocs, "id", a.ID); ex != nil || ids[a.ID] {
			return fmt.Sprintf("allocation ID %s is taken", a.ID)
		}
		ids[a.ID] = true
		switch {
		case a.Rank < 0 || a.Rank >= j.Spec.Replicas || seen[a.Rank]:
			return fmt.Sprintf("rank %d is out of range or repeated", a.Rank)
		case a.JobVersion != j.Version:
			return fmt.Sprintf("replica %d was planned for version %d, the job is at version %d (stale plan)", a.Rank, a.JobVersion, j.Version)
		case slices.Contains(serving[a.Rank], j.Version):
			return fmt.Sprintf("replica %d is served by a live allocation (stale plan)", a.Rank)
		case len(serving[a.Rank]) > 0 && !j.Deployment.Active():
			// A new replica next to an old one only while a rollout runs.
			return fmt.Sprintf("replica %d is served by an allocation of version %d and no rollout runs (stale plan)", a.Rank, serving[a.Rank][0])
		}
		seen[a.Rank] = true
		r := j.Replica(a.Rank)
		if a.Attempt != r.Restarts {
			return fmt.Sprintf("replica %d was planned for restart %d, it is at restart %d (stale plan)", a.Rank, a.Attempt, r.Restarts)
		}
		if r.RestartAfter != nil && now.Before(*r.RestartAfter) {
			return fmt.Sprintf("replica %d waits out its backoff until %s", a.Rank, r.RestartAfter.Format(time.RFC3339))
		}
		if a.MasterPort != 0 {
			return fmt.Sprintf("rank %d: a replacement replica takes no rendezvous port", a.Rank)
		}
		nd, why := onNode(txn, loads, tentative, a)
		if why != "" {
			return why
		}
		if a.Port != 0 && ports[portKey{nd.Address, a.Port}] {
			return fmt.Sprintf("rank %d: service port %s:%d is taken", a.Rank, nd.Address, a.Port)
		}
	}
	return ""
}

// applyReplacement commits a placement of missing replicas of running
// service j, or says why not; loads and ports take what it commits.
func applyReplacement(txn *memdb.Txn, index uint64, loads map[string]*nodeLoad, ports map[portKey]bool, j *api.Job, p JobPlacement, now time.Time) (string, error) {
	if why := checkReplacement(txn, loads, ports, j, p, now); why != "" {
		return why, nil
	}
	for _, a := range p.Allocs {
		na := *a
		na.JobID = j.ID
		na.Status = api.AllocPending
		na.DesiredStatus = api.DesiredRun
		na.CreateIndex, na.ModifyIndex = index, index
		if err := txn.Insert(tableAllocs, &na); err != nil {
			return "", fmt.Errorf("insert allocation %s: %w", a.ID, err)
		}
		if loads[a.NodeID] == nil {
			loads[a.NodeID] = loads[a.NodeID].clone()
		}
		loads[a.NodeID].add(&na)
		if a.Port != 0 {
			ports[portKey{nodeAddress(txn, a.NodeID), a.Port}] = true
		}
	}
	nj := *j
	addEvent(&nj, index, now, api.EventPlaced, "placed "+placedMessage(p.Allocs, true))
	nj.ModifyIndex = index
	if err := txn.Insert(tableJobs, &nj); err != nil {
		return "", err
	}
	return "", setIndex(txn, tableJobs, index)
}

// stopReplicas asks a service's serving allocations on nodes (every node
// when nodes is empty) to stop: their ranks are replaced at once,
// uncounted. It returns how many it stopped; they take cause.
func stopReplicas(txn *memdb.Txn, index uint64, jobID string, nodes []string, cause string) (int, error) {
	n := 0
	for _, a := range collect[*api.Allocation](nil, txn, tableAllocs, "job", jobID) {
		if !a.Serving() || (len(nodes) > 0 && !slices.Contains(nodes, a.NodeID)) {
			continue
		}
		na := *a
		na.DesiredStatus = api.DesiredStop
		na.StopCause = stopCause(cause)
		na.ModifyIndex = index
		if err := txn.Insert(tableAllocs, &na); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		return n, setIndex(txn, tableAllocs, index)
	}
	return 0, nil
}

// preemptReplicas evicts a running service's replicas on the nodes its
// preemptor goes to (all of them when the entry names no nodes); the
// service keeps running and the scheduler replaces them elsewhere.
func preemptReplicas(txn *memdb.Txn, index uint64, v *api.Job, nodes []string, cause string) error {
	if _, err := stopReplicas(txn, index, v.ID, nodes, cause); err != nil {
		return err
	}
	v.Reason = v.LastPreemption + "; replacing its replicas there"
	if len(nodes) > 0 {
		v.Reason = fmt.Sprintf("%s; replacing its replicas on %s", v.LastPreemption, strings.Join(nodeNames(txn, nodes), ", "))
	}
	v.ModifyIndex = index
	return txn.Insert(tableJobs, v)
}

// migrateReplicas moves a running service's replicas off node (all of
// them when node is ""), one replacement per replica.
func migrateReplicas(txn *memdb.Txn, index uint64, j *api.Job, node, reason, cause string) error {
	var nodes []string
	if node != "" {
		nodes = []string{node}
	}
	n, err := stopReplicas(txn, index, j.ID, nodes, cause)
	if err != nil || n == 0 {
		return err
	}
	j.Migrations++
	j.Reason = fmt.Sprintf("%s; replacing %d replica(s)", reason, n)
	j.ModifyIndex = index
	return txn.Insert(tableJobs, j)
}

func nodeNames(txn *memdb.Txn, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		if raw, _ := txn.First(tableNodes, "id", id); raw != nil {
			out[i] = raw.(*api.Node).Name
		}
	}
	return out
}
