package sched

import (
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
)

// holds returns the preemption holds in force at now: a pending job that
// evicted work keeps the nodes it freed closed to every other job until
// it is placed or its hold runs out. Without the hold, the victim
// restarting (or any other job) could take the freed GPUs first, and the
// preemptor would evict again, the same victim as often as not.
func holds(pending []*api.Job, now time.Time, wake func(time.Time)) []placement.Hold {
	var out []placement.Hold
	for _, j := range pending {
		if !holding(j, now) {
			continue
		}
		wake(*j.HoldUntil)
		out = append(out, placement.Hold{JobID: j.ID, Nodes: j.HeldNodes})
	}
	return out
}

// holding says whether j's preemption hold is in force at now.
func holding(j *api.Job, now time.Time) bool {
	return len(j.HeldNodes) > 0 && j.HoldUntil != nil && now.Before(*j.HoldUntil)
}
