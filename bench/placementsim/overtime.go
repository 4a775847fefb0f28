package placementsim

import (
	"container/heap"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/placement"
)

// OverTimeResult is one policy's trace-driven run with arrivals and
// departures.
type OverTimeResult struct {
	Policy      string  `json:"policy"`
	Tasks       int     `json:"tasks"`
	Placed      int     `json:"placed"`
	NeverFit    int     `json:"never_fit"` // larger than any node: not queued
	MeanWaitSec float64 `json:"mean_wait_s"`
	P95WaitSec  float64 `json:"p95_wait_s"`
	MakespanSec float64 `json:"makespan_s"`
	// UtilPct is the allocated GPU time over capacity x the arrival window
	// (first to last arrival): the makespan is set by a few tasks of the
	// trace that run for months.
	UtilPct float64 `json:"gpu_util_pct"`
}

type simEvent struct {
	at     float64
	finish bool
	task   int
	node   int
	gpus   []int
}

type eventHeap []simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, k int) bool {
	if h[i].at != h[k].at {
		return h[i].at < h[k].at
	}
	if h[i].finish != h[k].finish {
		return h[i].finish // departures first at the same instant
	}
	return h[i].task < h[k].task
}
func (h eventHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// overTimeWindow is how many waiting tasks, from the head, each pass may
// start (a backfill window, as batch schedulers bound theirs).
const overTimeWindow = 64

// OverTime replays a task list over time: each task arrives at its
// creation time divided by scale (scale > 1 compresses arrivals to make
// the cluster contended), runs for its trace duration (deletion minus
// scheduled, or minus creation when never scheduled), then leaves. At
// every arrival and departure the first overTimeWindow waiting tasks are
// tried in arrival order (one that does not fit does not block the others
// in the window; a shape that failed is not retried in the same pass). It
// reports queueing delay, GPU utilisation and makespan.
func OverTime(nodes []Node, list []Pod, p placement.Policy, scale float64) OverTimeResult {
	if scale <= 0 {
		scale = 1
	}
	states, _ := Cluster(nodes, nil)
	c := placement.NewCluster(states)
	var capacity int64
	maxGPUs := 0
	for _, s := range states {
		capacity += int64(len(s.GPUFree)) * placement.MilliPerGPU
		maxGPUs = max(maxGPUs, len(s.GPUFree))
	}
	pods := append([]Pod(nil), list...)
	sort.SliceStable(pods, func(i, k int) bool { return pods[i].Created < pods[k].Created })
	res := OverTimeResult{Policy: p.Name(), Tasks: len(pods)}
	tasks := make([]placement.Task, len(pods))
	arrive := make([]float64, len(pods))
	h := &eventHeap{}
	for i, pod := range pods {
		tasks[i] = pod.Task()
		arrive[i] = float64(pod.Created) / scale
		heap.Push(h, simEvent{at: arrive[i], task: i})
	}
	obs, _ := p.(placement.Observer)
	var queue []int
	var waits []float64
	var used int64
	var area, last, first float64
	first = -1
	lastArrival := arrive[len(arrive)-1]
	duration := func(pod Pod) float64 {
		start := pod.Scheduled
		if start == 0 {
			start = pod.Created
		}
		return float64(max(pod.Deleted-start, 1))
	}
	for h.Len() > 0 {
		ev := heap.Pop(h).(simEvent)
		if last < lastArrival {
			area += float64(used) * (min(ev.at, lastArrival) - last)
		}
		last = ev.at
		if first < 0 {
			first = ev.at
		}
		if ev.finish {
			c.Release(ev.node, tasks[ev.task], ev.gpus)
			used -= pods[ev.task].TotalMilli()
		} else {
			if tasks[ev.task].GPUs > maxGPUs {
				res.NeverFit++
				continue
			}
			if obs != nil {
				obs.Observe(tasks[ev.task])
			}
			queue = append(queue, ev.task)
		}
		failed := map[string]bool{}
		win := min(len(queue), overTimeWindow)
		kept := make([]int, 0, win)
		for _, i := range queue[:win] {
			t := tasks[i]
			key := shapeKey(t)
			if failed[key] {
				kept = append(kept, i)
				continue
			}
			n, gpus := c.Select(t, p, nil)
			if n < 0 {
				failed[key] = true
				kept = append(kept, i)
				continue
			}
			c.Place(n, t, gpus)
			used += pods[i].TotalMilli()
			res.Placed++
			waits = append(waits, ev.at-arrive[i])
			heap.Push(h, simEvent{at: ev.at + duration(pods[i]), finish: true, task: i, node: n, gpus: gpus})
		}
		if len(kept) < win {
			queue = append(kept, queue[win:]...)
		}
	}
	res.MakespanSec = last - first
	if w := lastArrival - max(first, 0); w > 0 {
		res.UtilPct = 100 * area / (float64(capacity) * w)
	}
	if len(waits) > 0 {
		var s float64
		for _, w := range waits {
			s += w
		}
		res.MeanWaitSec = s / float64(len(waits))
		sort.Float64s(waits)
		res.P95WaitSec = waits[int(float64(len(waits)-1)*0.95)]
	}
	return res
}

func shapeKey(t placement.Task) string {
	return strconv.FormatInt(t.CPUMilli, 10) + "," + strconv.FormatInt(t.Memory, 10) + "," + strconv.Itoa(t.GPUs) + "," +
		strconv.FormatInt(t.GPUMilli, 10) + "," + strings.Join(t.Models, "|")
}
