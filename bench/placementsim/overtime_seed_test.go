package placementsim

import (
	"hash/fnv"
	"path/filepath"
	"reflect"
	"testing"
)

// defaultList is the openb default task list.
func defaultList(t *testing.T) []Pod {
	t.Helper()
	list, err := LoadPods(filepath.Join(DataDir(), "openb_pod_list_default.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestSeedZeroIsTheRecordedDraw: seed 0 draws what the recorded tables
// were made with: the queue is FNV-1a 32 of the name, the over-estimate
// FNV-1a 64 of name + "/runtime" (the formulas as they were before the
// seed, written out here), same-second tasks keep the list's order and
// copy c comes exactly c seconds after the original.
func TestSeedZeroIsTheRecordedDraw(t *testing.T) {
	queues := SimQueues(100)
	oldQueue := func(name string) string {
		h := fnv.New32a()
		h.Write([]byte(name))
		return queues[h.Sum32()%uint32(len(queues))].Name
	}
	oldOver := func(name string) float64 {
		h := fnv.New64a()
		h.Write([]byte(name))
		h.Write([]byte("/runtime"))
		return 1 + 2*float64(h.Sum64()>>11)/(1<<53)
	}
	list := defaultList(t)
	for _, tc := range []struct {
		name  string
		pods  []Pod
		check func(t *testing.T, tasks []SimTask)
	}{
		{"queues and over-estimates", list, func(t *testing.T, tasks []SimTask) {
			for _, x := range tasks {
				if x.Queue != oldQueue(x.Name) || x.Overestimate != oldOver(x.Name) {
					t.Fatalf("%s: queue %s over %v, recorded draw %s %v", x.Name, x.Queue, x.Overestimate, oldQueue(x.Name), oldOver(x.Name))
				}
			}
		}},
		{"same-second order", []Pod{{Name: "z", Created: 5}, {Name: "a", Created: 5}, {Name: "m", Created: 1}, {Name: "b", Created: 5}},
			func(t *testing.T, tasks []SimTask) {
				var got []string
				for _, x := range tasks {
					got = append(got, x.Name)
				}
				if want := []string{"m", "z", "a", "b"}; !reflect.DeepEqual(got, want) {
					t.Errorf("order %v, want %v", got, want)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, SimTasks(tc.pods, 1, queues, 3, 0)) })
	}
	pods := []Pod{{Name: "a", Created: 10, Scheduled: 12, Deleted: 50}, {Name: "b", Created: 20, Deleted: 30}}
	got := copyPods(pods, 3, 0, CopyJitter)
	want := append(append([]Pod(nil), pods...),
		Pod{Name: "a-copy-1", Created: 11, Scheduled: 13, Deleted: 51}, Pod{Name: "b-copy-1", Created: 21, Deleted: 31},
		Pod{Name: "a-copy-2", Created: 12, Scheduled: 14, Deleted: 52}, Pod{Name: "b-copy-2", Created: 22, Deleted: 32})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copies with seed 0:\n%+v\nwant\n%+v", got, want)
	}
}

// TestSeedsDrawAnew: a seed other than 0 draws queues, over-estimates and
// copy times anew (the same seed the same way), keeps each draw's range
// and leaves what the trace says (shape, priority, duration) alone.
func TestSeedsDrawAnew(t *testing.T) {
	queues := SimQueues(100)
	list := defaultList(t)
	draws := map[uint64]map[string]SimTask{}
	for _, seed := range []uint64{0, 1, 2} {
		tasks := SimTasks(list, 1, queues, 3, seed)
		if again := SimTasks(list, 1, queues, 3, seed); !reflect.DeepEqual(tasks, again) {
			t.Fatalf("seed %d drew differently twice", seed)
		}
		m := map[string]SimTask{}
		share := map[string]int{}
		for _, x := range tasks {
			m[x.Name] = x
			share[x.Queue]++
			if x.Overestimate < 1 || x.Overestimate >= 3 {
				t.Fatalf("seed %d: %s over-estimates by %v, outside [1, 3)", seed, x.Name, x.Overestimate)
			}
		}
		for q, n := range share {
			if f := float64(n) / float64(len(tasks)); f < 0.30 || f > 0.37 {
				t.Errorf("seed %d: queue %s has %.1f%% of the tasks, not about a third", seed, q, 100*f)
			}
		}
		draws[seed] = m
	}
	for _, pair := range [][2]uint64{{0, 1}, {1, 2}, {0, 2}} {
		a, b := draws[pair[0]], draws[pair[1]]
		queueMoved, overMoved := 0, 0
		for name, x := range a {
			y := b[name]
			if x.Task.GPUs != y.Task.GPUs || x.Task.GPUMilli != y.Task.GPUMilli || x.Priority != y.Priority ||
				x.Arrive != y.Arrive || x.Duration != y.Duration {
				t.Fatalf("seeds %v changed what the trace says about %s: %+v vs %+v", pair, name, x, y)
			}
			if x.Queue != y.Queue {
				queueMoved++
			}
			if x.Overestimate != y.Overestimate {
				overMoved++
			}
		}
		// Independent draws over three queues agree a third of the time.
		if f := float64(queueMoved) / float64(len(a)); f < 0.6 || f > 0.73 {
			t.Errorf("seeds %v: %.1f%% of the tasks changed queue, want about two thirds", pair, 100*f)
		}
		if overMoved != len(a) {
			t.Errorf("seeds %v: %d of %d over-estimates changed", pair, overMoved, len(a))
		}
	}
	for _, seed := range []uint64{1, 2} {
		copies := copyPods(list, 3, seed, CopyJitter)
		if len(copies) != 3*len(list) {
			t.Fatalf("seed %d: %d pods, want %d", seed, len(copies), 3*len(list))
		}
		moved := 0
		for c := 1; c < 3; c++ {
			for i, p := range list {
				prev, cp := copies[(c-1)*len(list)+i], copies[c*len(list)+i]
				d := cp.Created - prev.Created
				if d < 1 || d >= 1+CopyJitter {
					t.Fatalf("seed %d: copy %d of %s comes %d s after copy %d, outside [1, %d]", seed, c, p.Name, d, c-1, CopyJitter)
				}
				if cp.Deleted-cp.Created != p.Deleted-p.Created || (p.Scheduled > 0 && cp.Scheduled-cp.Created != p.Scheduled-p.Created) {
					t.Fatalf("seed %d: copy %d of %s changed its times: %+v vs %+v", seed, c, p.Name, cp, p)
				}
				if d > 1 {
					moved++
				}
			}
		}
		if moved < len(list) {
			t.Errorf("seed %d: only %d of %d copies drew a delay", seed, moved, 2*len(list))
		}
		if still := copyPods(list, 3, seed, 0); !reflect.DeepEqual(still, copyPods(list, 3, 0, CopyJitter)) {
			t.Errorf("seed %d, jitter 0: the copies' times moved", seed)
		}
	}
}

// TestSeedChangesTheRun: on a contended slice of the default list the
// shipped pass's figures repeat for a seed and differ between seeds.
func TestSeedChangesTheRun(t *testing.T) {
	small := contendedNodes(t) // and 600 tasks, as TestSimulateInvariants
	list := defaultList(t)[8152-600:]
	o := Options{Schedulers: []string{"ark-shortest-age180-tiers"}, TimeScale: 2000, CheckpointEvery: 600, Overestimate: 3, PassInterval: 10}
	run := func(seed uint64) []SchedulerRow {
		o.OverTimeSeed = seed
		res, err := runOverTime(small, list, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		return schedulerRows(res)
	}
	one, two := run(1), run(2)
	if again := run(1); !reflect.DeepEqual(one, again) {
		t.Errorf("seed 1 twice:\n%+v\n%+v", one, again)
	}
	if reflect.DeepEqual(one[1], two[1]) {
		t.Errorf("seeds 1 and 2 ran the shipped pass alike: %+v", one[1])
	}
}
