package placementsim

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/placement"
)

// Failed is the node of a dropped task in the events file.
const Failed = "FAILED"

// Event is one decision of a replay, in the reference's events format.
type Event struct {
	Seq     int
	Pod     string
	Node    string // Failed when dropped
	GPUs    []int
	Used    int64 // GPU milli placed after this event
	Arrived int64 // GPU milli arrived after this event
}

// Result is one policy's replay of one sequence.
type Result struct {
	Policy     string
	Events     []Event
	TotalMilli int64
	Placed     int
	Dropped    int
	// Unallocated is the headline: 100 - curve(100), in percent.
	Unallocated float64
	// AllocPct is curve(100), the allocation at 100% arrived, in percent.
	AllocPct float64
}

// Cluster builds the node states in tie-break order: by rank when given
// (the reference's seeded order), else by name. Order is the name order.
func Cluster(nodes []Node, rank map[string]int) ([]*placement.NodeState, error) {
	byName := append([]Node(nil), nodes...)
	sort.Slice(byName, func(i, k int) bool { return byName[i].Name < byName[k].Name })
	states := make([]*placement.NodeState, len(byName))
	for i, n := range byName {
		states[i] = &placement.NodeState{
			Name: n.Name, Model: n.Model, CPUMilli: n.CPUMilli, CPUFree: n.CPUMilli,
			Memory: n.MemoryMiB, MemFree: n.MemoryMiB, GPUFree: make([]int64, n.GPUs), Order: i,
		}
		for g := range states[i].GPUFree {
			states[i].GPUFree[g] = placement.MilliPerGPU
		}
	}
	if rank != nil {
		for _, s := range states {
			if _, ok := rank[s.Name]; !ok {
				return nil, fmt.Errorf("node %s is missing from the node order", s.Name)
			}
		}
		sort.SliceStable(states, func(i, k int) bool { return rank[states[i].Name] < rank[states[k].Name] })
	}
	return states, nil
}

// Replay places the pods one at a time, in order, with the policy; a pod
// that does not fit is dropped. Nothing ever leaves.
func Replay(nodes []Node, rank map[string]int, pods []Pod, p placement.Policy) (*Result, error) {
	states, err := Cluster(nodes, rank)
	if err != nil {
		return nil, err
	}
	c := placement.NewNodeIndex(states)
	res := &Result{Policy: p.Name(), Events: make([]Event, 0, len(pods))}
	for _, s := range states {
		res.TotalMilli += int64(len(s.GPUFree)) * placement.MilliPerGPU
	}
	obs, _ := p.(placement.Observer)
	var used, arrived int64
	for i, pod := range pods {
		t := pod.Task()
		if obs != nil {
			obs.Observe(t)
		}
		arrived += pod.TotalMilli()
		ev := Event{Seq: i, Pod: pod.Name, Node: Failed}
		if idx, gpus := c.Select(t, p, nil); idx >= 0 {
			c.Take(idx, t, gpus)
			used += pod.TotalMilli()
			ev.Node, ev.GPUs = states[idx].Name, gpus
			res.Placed++
		} else {
			res.Dropped++
		}
		ev.Used, ev.Arrived = used, arrived
		res.Events = append(res.Events, ev)
	}
	res.AllocPct = Curve(res.Events, res.TotalMilli, 100)
	res.Unallocated = round2(100 - res.AllocPct)
	return res, nil
}

// round2 rounds to 2 decimals, half to even (as Python's round).
func round2(x float64) float64 { return math.RoundToEven(x*100) / 100 }

// Curve is the protocol's allocation curve at bin x: the mean allocation %
// (rounded to 2 decimals per event) of the events whose arrived % rounds
// (half to even) to x; with none, of bins x-1..x+1; rounded to 2 decimals.
func Curve(events []Event, total int64, x int) float64 {
	mean := func(lo, hi int) (float64, bool) {
		var s float64
		n := 0
		for _, e := range events {
			b := int(math.RoundToEven(float64(e.Arrived) / float64(total) * 100))
			if b >= lo && b <= hi {
				s += round2(float64(e.Used) / float64(total) * 100)
				n++
			}
		}
		if n == 0 {
			return 0, false
		}
		return s / float64(n), true
	}
	if m, ok := mean(x, x); ok {
		return round2(m)
	}
	m, _ := mean(x-1, x+1)
	return round2(m)
}

// WriteEvents writes the events in the reference's format.
func WriteEvents(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "seq,pod,node,gpu_index,used_gpu_milli,arrived_gpu_milli")
	for _, e := range events {
		fmt.Fprintf(bw, "%d,%s,%s,%s,%d,%d\n", e.Seq, e.Pod, e.Node, gpuIndex(e.GPUs), e.Used, e.Arrived)
	}
	return bw.Flush()
}

func gpuIndex(g []int) string {
	s := make([]string, len(g))
	for i, x := range g {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, "-")
}

// Diff compares a replay's decisions with a reference events file.
type Diff struct {
	Compared    int `json:"compared"`
	NodeDiffers int `json:"node_differs"` // a different node (or placed vs dropped)
	GPUDiffers  int `json:"gpu_differs"`  // same node, different GPU indexes
	FirstSeq    int `json:"first_seq"`    // first differing decision, -1 if none
}

// CompareEvents reads a reference events file and compares decision by
// decision.
func CompareEvents(events []Event, refPath string) (Diff, error) {
	rows, err := readCSV(refPath)
	if err != nil {
		return Diff{}, err
	}
	d := Diff{FirstSeq: -1}
	for i, m := range rows {
		if i >= len(events) {
			break
		}
		e := events[i]
		if m["pod"] != e.Pod {
			return d, fmt.Errorf("%s: row %d is pod %s, the replay's is %s: not the same sequence", refPath, i+2, m["pod"], e.Pod)
		}
		d.Compared++
		switch {
		case m["node"] != e.Node:
			d.NodeDiffers++
		case m["gpu_index"] != gpuIndex(e.GPUs):
			d.GPUDiffers++
		default:
			continue
		}
		if d.FirstSeq < 0 {
			d.FirstSeq = e.Seq
		}
	}
	return d, nil
}

// Generate makes an arrival sequence from a task list the protocol's way:
// sorted by name, shuffled with the seed, topped up to 130% of the GPU
// capacity with clones (<name>-tuned-<i>) drawn uniformly with
// replacement. Go's PCG is not the reference's generator, so for seeds
// with a published arrival file, replay that file instead.
func Generate(list []Pod, seed uint64, totalMilli int64) []Pod {
	sorted := append([]Pod(nil), list...)
	sort.Slice(sorted, func(i, k int) bool { return sorted[i].Name < sorted[k].Name })
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	out := append([]Pod(nil), sorted...)
	rng.Shuffle(len(out), func(i, k int) { out[i], out[k] = out[k], out[i] })
	var cum int64
	for _, p := range out {
		cum += p.TotalMilli()
	}
	target := totalMilli * 13 / 10
	for i := 0; cum < target && len(sorted) > 0; i++ {
		p := sorted[rng.IntN(len(sorted))]
		p.Source = p.Name
		p.Name = fmt.Sprintf("%s-tuned-%d", p.Name, i)
		out = append(out, p)
		cum += p.TotalMilli()
	}
	return out
}

// WriteEventsFile writes events to path.
func WriteEventsFile(path string, events []Event) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteEvents(f, events); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
