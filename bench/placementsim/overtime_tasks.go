package placementsim

import (
	"hash/fnv"
	"math"
	"sort"

	"github.com/ark-sched/ark/scheduler/placement"
)

// Priority classes of the over-time simulation, from the trace's qos
// column: latency-sensitive services and Guaranteed pods are high,
// Burstable pods (most of the trace's 8-GPU training tasks) and lists
// without a qos column are normal, best-effort pods are low.
const (
	PrioLow    = 0
	PrioNormal = 1
	PrioHigh   = 2
)

// PriorityOf maps a qos value to a priority class.
func PriorityOf(qos string) int {
	switch qos {
	case "LS", "Guaranteed":
		return PrioHigh
	case "BE":
		return PrioLow
	}
	return PrioNormal
}

// ClassName names a priority class.
func ClassName(prio int) string {
	switch prio {
	case PrioHigh:
		return "high"
	case PrioLow:
		return "low"
	}
	return "normal"
}

// SimQueues are the simulation's queues: openb has no queue field, so
// three teams split the cluster's GPUs 40/35/25% as quotas (the last one
// takes the rounding), with fair-share weights in the same proportion and
// borrowing allowed. Tasks are spread over them by a hash of their name
// (QueueOf), so each gets about a third of the load: team-c, with the
// smallest quota, borrows most and is reclaimed from most.
func SimQueues(gpus int) []placement.Queue {
	a := int(math.Round(0.40 * float64(gpus)))
	b := int(math.Round(0.35 * float64(gpus)))
	return []placement.Queue{
		{Name: "team-a", QuotaGPUs: a, Weight: 0.40, Borrow: true},
		{Name: "team-b", QuotaGPUs: b, Weight: 0.35, Borrow: true},
		{Name: "team-c", QuotaGPUs: gpus - a - b, Weight: 0.25, Borrow: true},
	}
}

// QueueOf is the queue a task belongs to: FNV-1a of its name modulo the
// number of queues.
func QueueOf(name string, queues []placement.Queue) string {
	return queueOf(name, queues, 0)
}

// queueOf is QueueOf for a seed (overtime_seed.go): seed 0 hashes the
// name alone, as QueueOf.
func queueOf(name string, queues []placement.Queue, seed uint64) string {
	if len(queues) == 0 {
		return ""
	}
	if seed != 0 {
		return queues[draw(name, "/queue", seed)%uint64(len(queues))].Name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return queues[h.Sum32()%uint32(len(queues))].Name
}

// overestimate is the factor a task's user multiplies its real runtime by
// when declaring maxRuntime: uniform in [1, most) from a hash of the name
// (users over-estimate, never under: a task past its maxRuntime would be
// killed, which this simulation does not model). A seed other than 0
// draws another factor (overtime_seed.go).
func overestimate(name string, most float64, seed uint64) float64 {
	if most <= 1 {
		return 1
	}
	return 1 + (most-1)*unitDraw(name, "/runtime", seed)
}

// SimTask is one task of the over-time simulation.
type SimTask struct {
	Name     string
	Task     placement.Task
	Queue    string
	Priority int
	Arrive   float64 // seconds
	Duration float64 // seconds of work
	// Overestimate scales the remaining work into the declared maxRuntime
	// that reservations and backfill read (1: exact).
	Overestimate float64
}

// SimTasks turns a task list into simulation tasks in arrival order: each
// arrives at its creation time divided by scale and runs for its trace
// duration (deletion minus scheduled, or minus creation when never
// scheduled; at least 1 s). Queues come from QueueOf, priorities from
// PriorityOf, declared runtimes over-estimate by up to mostOver x. seed
// varies the queues, the over-estimates and the order of tasks created in
// the same second (overtime_seed.go); 0 is the recorded tables' draw.
func SimTasks(pods []Pod, scale float64, queues []placement.Queue, mostOver float64, seed uint64) []SimTask {
	if scale <= 0 {
		scale = 1
	}
	sorted := append([]Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, k int) bool {
		if sorted[i].Created != sorted[k].Created {
			return sorted[i].Created < sorted[k].Created
		}
		return tieRank(sorted[i].Name, seed) < tieRank(sorted[k].Name, seed)
	})
	out := make([]SimTask, len(sorted))
	for i, p := range sorted {
		start := p.Scheduled
		if start == 0 {
			start = p.Created
		}
		out[i] = SimTask{
			Name: p.Name, Task: p.Task(), Queue: queueOf(p.Name, queues, seed), Priority: PriorityOf(p.QoS),
			Arrive: float64(p.Created) / scale, Duration: float64(max(p.Deleted-start, 1)),
			Overestimate: overestimate(p.Name, mostOver, seed),
		}
	}
	return out
}
