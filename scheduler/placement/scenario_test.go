package placement

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// Scenario files (testdata/*.txt) drive Place end to end. Commands, one a
// line ("#" starts a comment):
//
//	node NAME gpus=N [model=M] [gpumem=GI] [cpu=CORES] [ram=GI] [numa=0,0,1,1] [down]
//	alloc ID node=NAME gpus=0,1 [cpu=CORES] [ram=GI] [milli=M [gpumem=GI]]
//	      [job=GANG] [prio=P] [since=SECONDS] [ends=SECONDS] [stopping]
//	job ID [replicas=R] [gpus=G] [milli=M] [model=M] [gpumem=Q] [cpu=Q] [ram=Q] [samenode] [kind=K] [nvlink=required]
//	      [prio=P] [maxruntime=DURATION]
//	place [preempt] [backfill]
//	JOB: rank@node[gpus] ...        expected placement (exact)
//	JOB: pending: PREFIX            expected reason (prefix)
//	JOB: preempts V1,V2             expected preemption (exact victims)
//	end
//
// "place" runs one pass over the jobs declared since the last pass, with
// the nodes and allocations so far (placed jobs become allocations), and
// checks the expectations up to "end": every job must be listed. milli=
// makes an allocation or a job a share of one GPU (gpumem= is then the GPU
// memory the share holds). An allocation's job= names its gang (default
// job-ID), prio= its job's priority (default 50), since= the seconds since
// its last checkpoint and ends= the seconds until its declared end (none:
// unknown); stopping marks it asked to stop. "place preempt" and "place
// backfill" turn those passes on.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

func kv(fields []string) (map[string]string, map[string]bool) {
	vals, flags := map[string]string{}, map[string]bool{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			vals[k] = v
		} else {
			flags[f] = true
		}
	}
	return vals, flags
}

func ints(t *testing.T, s string) []int {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("bad int list %q", s)
		}
		out = append(out, n)
	}
	return out
}

func num(t *testing.T, s string, def int64) int64 {
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return n
}

func runScenario(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var nodes []*api.Node
	var allocs []*api.Allocation
	var pending []*api.Job
	run := map[string]RunInfo{}
	jobPrio := map[string]int{}
	byName := map[string]*api.Node{}
	var res Result
	expect := map[string]string{}
	inExpect := false
	lineNo := 0
	check := func() {
		got := map[string]string{}
		for _, p := range res.Placements {
			got[p.JobID] = asg(p)
		}
		for id, r := range res.Unplaced {
			got[id] = "pending: " + r
		}
		for _, p := range res.Preemptions {
			got[p.JobID] = "preempts " + strings.Join(p.Victims, ",")
		}
		var ids []string
		for id := range got {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			want, ok := expect[id]
			switch {
			case !ok:
				t.Errorf("%s:%d: job %s: got %q, not expected", path, lineNo, id, got[id])
			case strings.HasPrefix(want, "pending: ") && !strings.HasPrefix(got[id], want):
				t.Errorf("%s:%d: job %s:\n got %q\nwant prefix %q", path, lineNo, id, got[id], want)
			case !strings.HasPrefix(want, "pending: ") && got[id] != want:
				t.Errorf("%s:%d: job %s: got %q, want %q", path, lineNo, id, got[id], want)
			}
		}
		for id := range expect {
			if _, ok := got[id]; !ok {
				t.Errorf("%s:%d: job %s expected but not in the result", path, lineNo, id)
			}
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if inExpect {
			if line == "end" {
				check()
				inExpect = false
				continue
			}
			id, want, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s:%d: want 'JOB: ...', got %q", path, lineNo, line)
			}
			expect[id] = want
			continue
		}
		fields := strings.Fields(line)
		vals, flags := kv(fields[1:])
		switch fields[0] {
		case "node":
			name := fields[1]
			n := node(name, int(num(t, vals["gpus"], 8)), "NVIDIA "+orDefault(vals["model"], "H200"), num(t, vals["gpumem"], 141))
			n.CPUMilli = num(t, vals["cpu"], 64) * 1000
			n.MemoryBytes = num(t, vals["ram"], 512) * gi
			if v := vals["numa"]; v != "" {
				for i, m := range ints(t, v) {
					n.GPUs[i].NUMANode = m
				}
			}
			if flags["down"] {
				n.Status = api.NodeDown
			}
			nodes = append(nodes, n)
			byName[name] = n
		case "alloc":
			n := byName[vals["node"]]
			if n == nil {
				t.Fatalf("%s:%d: unknown node %q", path, lineNo, vals["node"])
			}
			a := live(fields[1], n.ID, ints(t, vals["gpus"])...)
			a.CPUMilli = num(t, vals["cpu"], 1) * 1000
			a.MemoryBytes = num(t, vals["ram"], 1) * gi
			if m := num(t, vals["milli"], 0); m > 0 {
				a.GPUMilli, a.GPUMemoryBytes = m, num(t, vals["gpumem"], 0)*gi
			}
			if v := vals["job"]; v != "" {
				a.JobID = v
			}
			if flags["stopping"] {
				a.DesiredStatus = api.DesiredStop
			}
			info := RunInfo{Priority: int(num(t, vals["prio"], 50)), SinceCheckpoint: float64(num(t, vals["since"], 0)), EndsIn: math.Inf(1)}
			if v := vals["ends"]; v != "" {
				info.EndsIn = float64(num(t, v, 0))
			}
			run[a.ID] = info
			allocs = append(allocs, a)
		case "job":
			var opts []func(*spec.Job)
			if v := vals["model"]; v != "" {
				opts = append(opts, model(v))
			}
			if v := vals["gpumem"]; v != "" {
				opts = append(opts, gpuMem(v))
			}
			if v := vals["cpu"]; v != "" {
				opts = append(opts, cpu(v))
			}
			if v := vals["ram"]; v != "" {
				opts = append(opts, mem(v))
			}
			if flags["samenode"] {
				opts = append(opts, sameNode)
			}
			if v := vals["kind"]; v != "" {
				opts = append(opts, func(s *spec.Job) { s.Kind = v })
			}
			if v := vals["nvlink"]; v != "" {
				opts = append(opts, func(s *spec.Job) { s.Topology.NVLink = v })
			}
			if m := int(num(t, vals["milli"], 0)); m > 0 {
				opts = append(opts, func(s *spec.Job) { s.Resources.GPUMilli = m })
			}
			if v := vals["maxruntime"]; v != "" {
				d, err := time.ParseDuration(v)
				if err != nil {
					t.Fatalf("%s:%d: maxruntime %q: %v", path, lineNo, v, err)
				}
				opts = append(opts, maxRuntime(d))
			}
			j := job(fields[1], int(num(t, vals["replicas"], 1)), int(num(t, vals["gpus"], 1)), opts...)
			j.Priority = int(num(t, vals["prio"], 50))
			jobPrio[j.ID] = j.Priority
			pending = append(pending, j)
		case "place":
			_, on := kv(fields[1:])
			res = Place(Input{Nodes: nodes, Allocs: allocs, Pending: pending, Run: run, Preempt: on["preempt"], Backfill: on["backfill"]})
			verifyResult(t, nodes, allocs, res)
			for _, p := range res.Placements {
				for _, a := range p.Assignments {
					al := p.Request.Allocation(fmt.Sprintf("%s-%d", p.JobID, a.Rank), nodeByID(nodes, a.NodeID), a.GPUs)
					al.JobID, al.NodeID, al.Status, al.DesiredStatus = p.JobID, a.NodeID, api.AllocRunning, api.DesiredRun
					allocs = append(allocs, al)
					run[al.ID] = RunInfo{Priority: jobPrio[p.JobID], EndsIn: math.Inf(1)}
				}
			}
			pending = nil
			expect = map[string]string{}
			inExpect = true
		default:
			t.Fatalf("%s:%d: unknown command %q", path, lineNo, fields[0])
		}
	}
	if inExpect {
		t.Fatalf("%s: expectations not closed with 'end'", path)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// verifyResult checks a plan with Fit, the FSM's re-check: nothing is
// double-booked or over-committed, and every job is whole or absent.
func verifyResult(t *testing.T, nodes []*api.Node, allocs []*api.Allocation, res Result) {
	t.Helper()
	byID := map[string]*api.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	usage := NodeUsage(allocs)
	for _, p := range res.Placements {
		if _, dup := res.Unplaced[p.JobID]; dup {
			t.Errorf("job %s both placed and pending", p.JobID)
		}
		for _, a := range p.Assignments {
			al := p.Request.Allocation(fmt.Sprintf("%s-%d", p.JobID, a.Rank), byID[a.NodeID], a.GPUs)
			al.NodeID = a.NodeID
			if err := Fit(byID[a.NodeID], usage[a.NodeID], al, p.Request); err != nil {
				t.Errorf("job %s rank %d: Fit refuses the plan: %v", p.JobID, a.Rank, err)
			}
			usage[a.NodeID] = usage[a.NodeID].Add(al)
		}
	}
}
