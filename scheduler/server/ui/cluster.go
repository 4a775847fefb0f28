package ui

import (
	"fmt"
	"hash/fnv"
	"html/template"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
)

// The cluster page: every node's GPUs as cells, coloured by the queue of
// the job that holds them.

// milliPerGPU is a whole GPU in GPUMilli units (placement.MilliPerGPU;
// not imported, so that the dashboard stays off the scheduler's code).
const milliPerGPU = 1000

// colours is how many queue colour classes the stylesheet defines (c0..).
const colours = 10

type clusterPage struct {
	Nodes    []nodeRow
	Legend   []legendItem
	GPUs     int
	UsedGPUs string // a sum of shares, as a decimal
	Down     int
	Draining int
	// Hidden is set when some GPUs are held by jobs the caller cannot see.
	Hidden bool
}

type nodeRow struct {
	ID, Name string
	// State is ready, down, draining or ineligible; it is also a CSS class.
	State string
	Info  string
	Model string
	GPUs  []gpuCell
	// Cells is GPUs drawn (cells.go).
	Cells template.HTML
}

type gpuCell struct {
	Index int
	Class string // free, other, or a queue colour c0..c9
	Share string // the fraction held when a share, "" for a whole GPU or a free one
	Title string
	JobID string // the job to link to, "" when none or hidden
}

type legendItem struct{ Queue, Class string }

// queueClass gives every queue a stable colour.
func queueClass(queue string) string {
	h := fnv.New32a()
	h.Write([]byte(queue))
	return "c" + strconv.Itoa(int(h.Sum32()%colours))
}

// nodeState names what a node can take: draining and ineligible nodes run
// what they hold but take nothing new.
func nodeState(n *api.Node) string {
	switch {
	case n.Status != api.NodeReady:
		return "down"
	case n.Drain != nil:
		return "draining"
	case n.Ineligible:
		return "ineligible"
	}
	return "ready"
}

// holder is one allocation's claim on one GPU.
type holder struct {
	job   *api.Job // nil when hidden from the caller
	rank  int
	milli int64
}

func buildCluster(v *View) clusterPage {
	type gpuKey struct {
		node string
		gpu  int
	}
	held := map[gpuKey][]holder{}
	claim := func(a *api.Allocation, j *api.Job) {
		if a.Terminal() {
			return
		}
		m := a.GPUMilli
		if m == 0 {
			m = milliPerGPU
		}
		for _, g := range a.GPUs {
			k := gpuKey{a.NodeID, g}
			held[k] = append(held[k], holder{job: j, rank: a.Rank, milli: m})
		}
	}
	queues := map[string]bool{}
	for _, j := range v.Jobs {
		for _, a := range j.Allocations {
			claim(a, j)
		}
	}
	for _, a := range v.Hidden {
		claim(a, nil)
	}
	p := clusterPage{Hidden: len(v.Hidden) > 0}
	var used int64
	for _, n := range sortedNodes(v.Nodes) {
		row := nodeRow{ID: n.ID, Name: n.Name, State: nodeState(n), Info: n.StatusInfo}
		switch row.State {
		case "down":
			p.Down++
		case "draining":
			p.Draining++
		}
		for _, g := range n.GPUs {
			if row.Model == "" {
				row.Model = g.Model
			}
			c := gpuCell{Index: g.Index, Class: "free", Title: gpuName(n, g) + " free"}
			if hs := held[gpuKey{n.ID, g.Index}]; len(hs) > 0 {
				c = cellOf(n, g, hs)
				if hs[0].job != nil {
					queues[hs[0].job.Queue] = true
				}
				for _, h := range hs {
					used += h.milli
				}
			}
			row.GPUs = append(row.GPUs, c)
		}
		row.Cells = drawCells(row.GPUs)
		p.GPUs += len(n.GPUs)
		p.Nodes = append(p.Nodes, row)
	}
	p.UsedGPUs = strconv.FormatFloat(float64(used)/milliPerGPU, 'f', -1, 64)
	for q := range queues {
		p.Legend = append(p.Legend, legendItem{Queue: q, Class: queueClass(q)})
	}
	sort.Slice(p.Legend, func(i, k int) bool { return p.Legend[i].Queue < p.Legend[k].Queue })
	return p
}

// cellOf draws a GPU one or more allocations hold: the colour of the
// first one's queue, the fraction all of them hold when that is less than
// the whole GPU, and each holder in the tooltip.
func cellOf(n *api.Node, g api.GPU, hs []holder) gpuCell {
	c := gpuCell{Index: g.Index, Class: "other"}
	var milli int64
	var title strings.Builder
	title.WriteString(gpuName(n, g))
	for i, h := range hs {
		milli += h.milli
		if i > 0 {
			title.WriteByte(';')
		}
		if h.job == nil {
			title.WriteString(" in use by a job you cannot see")
			continue
		}
		title.WriteString(" " + h.job.ID + " rank " + strconv.Itoa(h.rank) + " (queue " + h.job.Queue + ", " + fraction(h.milli) + " GPU)")
		if i == 0 {
			c.Class, c.JobID = queueClass(h.job.Queue), h.job.ID
		}
	}
	if milli < milliPerGPU {
		c.Share = fraction(milli)
	}
	c.Title = title.String()
	return c
}

// gpuName heads a cell's tooltip. Concatenation, not fmt: 8,000 cells.
func gpuName(n *api.Node, g api.GPU) string {
	return n.Name + " GPU " + strconv.Itoa(g.Index) + " (" + g.Model + "):"
}

// fraction writes a share of a GPU as a fraction a person reads at a
// glance (1/2, 3/4, 1/3), or as a decimal when no small denominator fits.
func fraction(milli int64) string {
	if milli >= milliPerGPU && milli%milliPerGPU == 0 {
		return strconv.FormatInt(milli/milliPerGPU, 10)
	}
	for den := int64(2); den <= 8; den++ {
		num := (milli*den + milliPerGPU/2) / milliPerGPU
		if num > 0 && abs(num*milliPerGPU-milli*den) <= den { // within a thousandth
			return fmt.Sprintf("%d/%d", num, den)
		}
	}
	return strconv.FormatFloat(float64(milli)/milliPerGPU, 'f', -1, 64)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func sortedNodes(nodes []*api.Node) []*api.Node {
	out := append([]*api.Node(nil), nodes...)
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}
