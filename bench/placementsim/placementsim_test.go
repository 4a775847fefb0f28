package placementsim

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/placement"
)

func load(t *testing.T, list string, seed string, prefix int) ([]Node, map[string]int, []Pod, []placement.ShapeFreq) {
	t.Helper()
	dir := DataDir()
	nodes, err := LoadNodes(filepath.Join(dir, "openb_node_list_gpu_node.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rank, err := LoadNodeOrder(filepath.Join(dir, "arrivals", "nodes_openb_pod_list_"+list+"_seed"+seed+".csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	pods, err := LoadPods(filepath.Join(dir, "arrivals", "arrivals_openb_pod_list_"+list+"_seed"+seed+".csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var orig []placement.Task
	for _, p := range pods {
		if p.Name == p.Source {
			orig = append(orig, p.Task())
		}
	}
	if prefix > 0 {
		pods = pods[:prefix]
	}
	return nodes, rank, pods, placement.TypicalShapes(orig, 95)
}

// TestMatchesReferenceEvents replays the start of the seed-42 default
// sequence with FGD and best fit and compares every decision (node and GPU
// indexes) with the reference simulator's events. The whole sequence
// matches too (ark bench placement checks it); a prefix keeps -race fast.
func TestMatchesReferenceEvents(t *testing.T) {
	nodes, rank, pods, dist := load(t, "default", "42", 2000)
	for _, c := range []struct {
		policy, events string
	}{{"fgd", "events_default_06-FGD_seed42.csv.gz"}, {"bestfit", "events_default_05-BestFit_seed42.csv.gz"}} {
		p, _ := placement.NewPolicy(c.policy, dist, 42)
		res, err := Replay(nodes, rank, pods, p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := CompareEvents(res.Events, filepath.Join(DataDir(), "arrivals", c.events))
		if err != nil {
			t.Fatal(err)
		}
		if d.Compared != len(pods) || d.NodeDiffers+d.GPUDiffers != 0 {
			t.Errorf("%s: %+v, want all %d decisions identical", c.policy, d, len(pods))
		}
	}
}

func TestReplayInvariants(t *testing.T) {
	nodes, rank, pods, dist := load(t, "multigpu20", "43", 1200)
	for _, name := range []string{"ark", "fgd", "bestfit", "firstfit", "random"} {
		p, _ := placement.NewPolicy(name, dist, 1)
		res, err := Replay(nodes, rank, pods, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Placed+res.Dropped != len(pods) || len(res.Events) != len(pods) {
			t.Fatalf("%s: %d placed + %d dropped != %d", name, res.Placed, res.Dropped, len(pods))
		}
		var used int64
		for i, e := range res.Events {
			if e.Node != Failed {
				used += pods[i].TotalMilli()
				if len(e.GPUs) != pods[i].NumGPU {
					t.Fatalf("%s: pod %s got GPUs %v, asks %d", name, e.Pod, e.GPUs, pods[i].NumGPU)
				}
			}
			if e.Used != used {
				t.Fatalf("%s: event %d used %d, want %d", name, i, e.Used, used)
			}
		}
		// Rebuild the cluster from the events: nothing over-committed.
		states, _ := Cluster(nodes, rank)
		byName := map[string]*placement.NodeState{}
		for _, s := range states {
			byName[s.Name] = s
		}
		for i, e := range res.Events {
			if e.Node == Failed {
				continue
			}
			n := byName[e.Node]
			tk := pods[i].Task()
			if r := n.Check(tk); r != placement.RuleNone {
				t.Fatalf("%s: pod %s on %s: %v", name, e.Pod, e.Node, r)
			}
			for _, g := range e.GPUs {
				if n.GPUFree[g] < tk.GPUMilli {
					t.Fatalf("%s: pod %s on %s GPU %d: %d free, needs %d", name, e.Pod, e.Node, g, n.GPUFree[g], tk.GPUMilli)
				}
			}
			n.Take(tk, e.GPUs)
		}
	}
}

func TestCurve(t *testing.T) {
	total := int64(10000)
	ev := []Event{
		{Arrived: 9940, Used: 9000}, // 99.4% -> bin 99
		{Arrived: 9950, Used: 9100}, // 99.5% -> bin 100 (half to even)
		{Arrived: 10000, Used: 9200},
		{Arrived: 10049, Used: 9300}, // 100.49% -> bin 100
		{Arrived: 10160, Used: 9400}, // 101.6% -> bin 102
	}
	if got := Curve(ev, total, 100); got != 92 {
		t.Errorf("curve(100) = %v, want 92 (mean of 91, 92, 93)", got)
	}
	// No event in bin 101: the mean of bins 100..102.
	if got := Curve(ev, total, 101); got != 92.5 {
		t.Errorf("curve(101) = %v, want 92.5", got)
	}
}

func TestGenerate(t *testing.T) {
	list := []Pod{{Name: "b", NumGPU: 1, GPUMilli: 1000}, {Name: "a", NumGPU: 1, GPUMilli: 500}, {Name: "c", CPUMilli: 1}}
	a, b := Generate(list, 7, 10000), Generate(list, 7, 10000)
	var cum int64
	for i := range a {
		if a[i].Name != b[i].Name {
			t.Fatal("Generate is not a function of its seed")
		}
		cum += a[i].TotalMilli()
	}
	if cum < 13000 || cum-13000 >= 1000 {
		t.Errorf("topped up to %d milli, want just past 130%% of 10000", cum)
	}
	if !strings.Contains(a[len(a)-1].Name, "-tuned-") {
		t.Errorf("clones are not named <name>-tuned-<i>: %s", a[len(a)-1].Name)
	}
}

func TestLoadPodsSpecQuirk(t *testing.T) {
	_, _, pods, _ := load(t, "multigpu20", "42", 10)
	for _, p := range pods {
		if p.GPUSpec != "" {
			t.Fatalf("pod %s has gpu_spec %q: the multigpu20 arrival files carry the pod name there, which means any model", p.Name, p.GPUSpec)
		}
	}
}

func TestWriteEvents(t *testing.T) {
	var b bytes.Buffer
	if err := WriteEvents(&b, []Event{{Seq: 0, Pod: "p", Node: "n", GPUs: []int{0, 3}, Used: 2000, Arrived: 2000}, {Seq: 1, Pod: "q", Node: Failed, Arrived: 2500}}); err != nil {
		t.Fatal(err)
	}
	want := "seq,pod,node,gpu_index,used_gpu_milli,arrived_gpu_milli\n0,p,n,0-3,2000,2000\n1,q,FAILED,,0,2500\n"
	if b.String() != want {
		t.Errorf("events:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSpeedSmall(t *testing.T) {
	r, err := Speed(200, 500, 50, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.SinglePlaced == 0 || r.GangPlaced == 0 {
		t.Errorf("speed run placed nothing: %+v", r)
	}
}
