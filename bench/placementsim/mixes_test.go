package placementsim

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

func loadList(t *testing.T, list string) []Pod {
	t.Helper()
	pods, err := LoadPods(filepath.Join(DataDir(), "openb_pod_list_"+list+".csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

// TestMixTraceListsShares: the shares the sweep sets are measured the way
// the trace's own stressed lists carry them (gpushare40 is 40% of GPU milli
// in shared tasks, multigpu20 20% in multi-GPU tasks, gpuspec10 10% of GPU
// tasks naming a model), and the base lists hold every class.
func TestMixTraceListsShares(t *testing.T) {
	for _, c := range []struct {
		list  string
		class MixClass
		want  float64
	}{
		{"gpushare40", MixSharing, 40},
		{"multigpu20", MixMultiGPU, 20},
		{"gpuspec10", MixGPUModel, 10},
		{"default", MixGPUModel, 0},
	} {
		if got := MixShare(loadList(t, c.list), c.class); math.Abs(got-c.want) > 0.6 {
			t.Errorf("%s: %s share %.2f%%, want about %.0f%%", c.list, c.class, got, c.want)
		}
	}
}

// shapeKey is what a mix must copy from the trace task it draws.
type mixKey struct {
	cpu, mem, milli int64
	gpus            int
	spec            string
}

func keyOf(p Pod) mixKey { return mixKey{p.CPUMilli, p.MemoryMiB, p.GPUMilli, p.NumGPU, p.GPUSpec} }

// TestMixShares: every mix of the sweep has its class's share within one
// task's weight of the requested one, as many GPU tasks as its base list,
// the base's CPU-only tasks unchanged, and only copies of base tasks.
func TestMixShares(t *testing.T) {
	for _, class := range MixClasses {
		base := loadList(t, MixBase[class])
		byName := map[string]Pod{}
		var gpuTasks, cpuOnly int
		var total, maxW int64
		for _, p := range base {
			byName[p.Name] = p
			if p.NumGPU == 0 {
				cpuOnly++
				continue
			}
			gpuTasks++
			maxW = max(maxW, class.weight(p))
		}
		for _, pct := range MixPcts[class] {
			mix, err := Mix(base, class, pct, 42)
			if err != nil {
				t.Fatalf("%s %d%%: %v", class, pct, err)
			}
			var gpus, cpus int
			total = 0
			names := map[string]bool{}
			for _, p := range mix {
				if names[p.Name] {
					t.Fatalf("%s %d%%: name %s twice", class, pct, p.Name)
				}
				names[p.Name] = true
				src, ok := byName[p.Source]
				if !ok || keyOf(src) != keyOf(p) {
					t.Fatalf("%s %d%%: %s is not a copy of a base task (source %q: %+v)", class, pct, p.Name, p.Source, src)
				}
				if p.NumGPU == 0 {
					cpus++
					if p.Name != p.Source {
						t.Errorf("%s %d%%: CPU-only task %s renamed", class, pct, p.Source)
					}
					continue
				}
				gpus++
				total += class.weight(p)
			}
			if gpus != gpuTasks || cpus != cpuOnly {
				t.Errorf("%s %d%%: %d GPU and %d CPU-only tasks, want %d and %d", class, pct, gpus, cpus, gpuTasks, cpuOnly)
			}
			// The greedy draw stops within one task's weight of the share.
			tol := 100 * float64(maxW) / float64(total)
			if got := MixShare(mix, class); math.Abs(got-float64(pct)) > tol {
				t.Errorf("%s %d%%: share %.3f%%, want within %.3f of %d", class, pct, got, tol, pct)
			}
		}
	}
}

// TestMixDeterministic: a seed gives the same list every time, another
// seed another list; the node order likewise, and it is a permutation.
func TestMixDeterministic(t *testing.T) {
	base := loadList(t, "default")
	a, _ := Mix(base, MixSharing, 60, 7)
	b, _ := Mix(base, MixSharing, 60, 7)
	c, _ := Mix(base, MixSharing, 60, 8)
	if !reflect.DeepEqual(a, b) {
		t.Error("Mix with the same seed gave two lists")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("Mix with seeds 7 and 8 gave the same list")
	}
	nodes, err := LoadNodes(filepath.Join(DataDir(), "openb_node_list_gpu_node.csv"))
	if err != nil {
		t.Fatal(err)
	}
	r1, r2, r3 := MixNodeOrder(nodes, 7), MixNodeOrder(nodes, 7), MixNodeOrder(nodes, 8)
	if !reflect.DeepEqual(r1, r2) || reflect.DeepEqual(r1, r3) {
		t.Error("MixNodeOrder is not a function of its seed")
	}
	seen := make([]bool, len(nodes))
	for _, n := range nodes {
		i, ok := r1[n.Name]
		if !ok || i < 0 || i >= len(nodes) || seen[i] {
			t.Fatalf("node %s rank %d (present %v): not a permutation", n.Name, i, ok)
		}
		seen[i] = true
	}
}

// TestMixErrors: what Mix refuses, as configuration errors.
func TestMixErrors(t *testing.T) {
	base := loadList(t, "default") // no task names a model
	for _, c := range []struct {
		name  string
		class MixClass
		pct   int
	}{
		{"unknown class", "cpu-only", 10},
		{"negative share", MixSharing, -1},
		{"share over 100", MixSharing, 101},
		{"no class task to draw", MixGPUModel, 5},
	} {
		if _, err := Mix(base, c.class, c.pct, 1); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", c.name, err)
		}
	}
	if _, err := Mix(base, MixGPUModel, 0, 1); err != nil {
		t.Errorf("0%% of a class the list lacks: %v", err)
	}
	only := []Pod{{Name: "a", NumGPU: 1, GPUMilli: 500}}
	if _, err := Mix(only, MixSharing, 50, 1); !errors.Is(err, ErrConfig) {
		t.Errorf("a list of shared tasks only, 50%% shared: err %v, want ErrConfig", err)
	}
}

// TestMixSummary: the verdicts and the spread over seeds.
func TestMixSummary(t *testing.T) {
	row := func(c MixClass, pct int, seed uint64, ark, fgd float64) MixRow {
		return MixRow{Class: c, Pct: pct, Seed: seed, Ark: ark, FGD: fgd, Margin: round2(fgd - ark)}
	}
	r := &MixReport{Rows: []MixRow{
		row(MixSharing, 0, 1, 4.0, 4.5), row(MixSharing, 0, 2, 4.0, 4.6), row(MixSharing, 0, 3, 4.0, 4.4), // +0.5 ± 0.1: win
		row(MixSharing, 20, 1, 4.0, 4.5), row(MixSharing, 20, 2, 4.0, 3.9), row(MixSharing, 20, 3, 4.0, 4.1), // mean +0.17, spread 0.6
		row(MixGPUModel, 33, 1, 5.0, 4.5), row(MixGPUModel, 33, 2, 5.0, 4.4), row(MixGPUModel, 33, 3, 5.0, 4.6), // -0.5 ± 0.1: loss
	}}
	r.summarise()
	want := []struct {
		verdict      string
		mean, spread float64
	}{{VerdictWin, 0.5, 0.2}, {VerdictWithin, 0.17, 0.6}, {VerdictLoss, -0.5, 0.2}}
	if len(r.Summary) != len(want) {
		t.Fatalf("%d mixes summarised, want %d", len(r.Summary), len(want))
	}
	for i, w := range want {
		s := r.Summary[i]
		if s.Verdict != w.verdict || s.MarginMean != w.mean || s.Spread != w.spread {
			t.Errorf("mix %s %d%%: %s mean %.2f spread %.2f, want %s %.2f %.2f", s.Class, s.Pct, s.Verdict, s.MarginMean, s.Spread, w.verdict, w.mean, w.spread)
		}
	}
	if r.Wins != 1 || r.Within != 1 || r.Losses != 1 {
		t.Errorf("wins/within/losses %d/%d/%d, want 1/1/1", r.Wins, r.Within, r.Losses)
	}
	// Margins +0.5 +0.6 +0.4: sd 0.1, t bar 2.920 x 0.1 / sqrt 3 = 0.17 < 0.5.
	// +0.5 -0.1 +0.1: sd 0.31, bar 0.52 > 0.17: a tie, as the range said.
	tests := []struct {
		sd        float64
		won, lost int
		test      string
	}{{0.1, 3, 0, TestWon}, {0.31, 2, 1, TestTie}, {0.1, 0, 3, TestLost}}
	for i, w := range tests {
		s := r.Summary[i]
		if s.Seeds != 3 || s.MarginSD != w.sd || s.SeedsWon != w.won || s.SeedsLost != w.lost || s.Test != w.test {
			t.Errorf("mix %s %d%%: %d seeds, sd %.2f, won/lost %d/%d, t-test %s; want 3, %.2f, %d/%d, %s",
				s.Class, s.Pct, s.Seeds, s.MarginSD, s.SeedsWon, s.SeedsLost, s.Test, w.sd, w.won, w.lost, w.test)
		}
	}
	if r.TestWins != 1 || r.TestTies != 1 || r.TestLosses != 1 {
		t.Errorf("t-test wins/ties/losses %d/%d/%d, want 1/1/1", r.TestWins, r.TestTies, r.TestLosses)
	}
}

// TestPairedT: the t-test's bar falls with more seeds where the range's
// rises: nine margins of +0.1 +- 0.1 are a win by the test, within the
// spread by the range; one seed is never a win; a flat margin is.
func TestPairedT(t *testing.T) {
	for _, c := range []struct {
		mean, sd float64
		n        int
		want     string
	}{
		{0.1, 0.1, 9, TestWon},   // bar 1.860 x 0.1 / 3 = 0.062
		{0.05, 0.1, 9, TestTie},  // below the bar
		{0.1, 0.1, 3, TestTie},   // bar 2.920 x 0.1 / 1.73 = 0.169
		{-0.1, 0.1, 9, TestLost}, // the mirror
		{0.5, 0, 1, TestTie},     // one seed says nothing about the spread
		{0.01, 0, 3, TestWon},    // no spread at all
		{0.1, 0.1, 200, TestWon}, // beyond the table: the 30's value
	} {
		if got := pairedT(c.mean, c.sd, c.n); got != c.want {
			t.Errorf("mean %.2f sd %.2f n %d: %s, want %s", c.mean, c.sd, c.n, got, c.want)
		}
	}
}

// TestMixSweepSmall: the sweep on a slice of the cluster (so that the
// sequences are short) gives its rows in job order whatever the replays'
// interleaving, the same figures on a second run, and a summary per mix.
func TestMixSweepSmall(t *testing.T) {
	all, err := LoadNodes(filepath.Join(DataDir(), "openb_node_list_gpu_node.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []Node
	for i := 0; i < len(all); i += 25 { // every model, 49 nodes
		nodes = append(nodes, all[i])
	}
	run := func() *MixReport {
		r, err := RunMixSweep(DataDir(), nodes, []MixClass{MixGPUModel, MixSharing}, []int{0, 20}, []uint64{1, 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs of the same sweep differ")
	}
	want := []mixJob{{MixGPUModel, 0, 1}, {MixGPUModel, 0, 2}, {MixGPUModel, 20, 1}, {MixGPUModel, 20, 2},
		{MixSharing, 0, 1}, {MixSharing, 0, 2}, {MixSharing, 20, 1}, {MixSharing, 20, 2}}
	if len(a.Rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(a.Rows), len(want))
	}
	for i, w := range want {
		r := a.Rows[i]
		if r.Class != w.class || r.Pct != w.pct || r.Seed != w.seed || math.Abs(r.Share-float64(w.pct)) > 1 || r.Arrivals == 0 {
			t.Errorf("row %d: %+v, want %v with its share", i, r, w)
		}
		if r.Ark <= 0 || r.FGD <= 0 || r.BestFit <= 0 || math.Abs(r.Margin-(r.FGD-r.Ark)) > 0.006 {
			t.Errorf("row %d: %+v: want figures above 0 and margin = FGD - Ark", i, r)
		}
	}
	if len(a.Summary) != 4 || a.Wins+a.Within+a.Losses != 4 {
		t.Errorf("summary %+v: want 4 mixes, each with a verdict", a.Summary)
	}
}
