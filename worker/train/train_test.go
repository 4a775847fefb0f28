package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/filestore"
)

// testText is a small corpus with structure a tiny model picks up fast.
var testText = []byte(strings.Repeat("the cat sat on the mat. the dog ate the log. a bird in the hand.\n", 60))

func testConfig(t *testing.T) Config {
	t.Helper()
	c, err := Preset("gpt-test")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestModel(t *testing.T, threads int) (*Model, *cpu.Device) {
	t.Helper()
	d := cpu.New(threads)
	t.Cleanup(func() { d.Close() })
	m, err := NewModel(d, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

func params(t *testing.T, m *Model) []float32 {
	t.Helper()
	p, err := kernels.Download(m.d, m.params)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole backward pass against a central difference of the forward
// along a random direction.
func TestGradientMatchesFiniteDifference(t *testing.T) {
	m, d := newTestModel(t, 1)
	if err := m.Init(1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	p := params(t, m)
	for i := range p {
		p[i] += 0.1 * float32(rng.NormFloat64()) // away from the flat start
	}
	if err := kernels.WriteFloat32(d, m.params, p); err != nil {
		t.Fatal(err)
	}
	const B = 2
	T := m.Cfg.Context
	a, err := m.actsFor(B)
	if err != nil {
		t.Fatal(err)
	}
	ds := NewDataset(testText, 0.1)
	ids, tgts := make([]int32, B*T), make([]int32, B*T)
	if err := ds.Batch(1, 1, 0, 1, B, T, ids, tgts); err != nil {
		t.Fatal(err)
	}
	tgts[3] = -1 // an ignored target
	if err := m.setBatch(a, ids, tgts); err != nil {
		t.Fatal(err)
	}
	if err := d.Fill(m.gradAll, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.forward(a, true); err != nil {
		t.Fatal(err)
	}
	var order []int
	if err := m.backward(a, func(l int) error { order = append(order, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 0, -1}; len(order) != 3 || order[0] != want[0] || order[2] != want[2] {
		t.Fatalf("bucket callbacks %v, want %v", order, want)
	}
	g, err := kernels.Download(d, m.grads)
	if err != nil {
		t.Fatal(err)
	}
	u := make([]float32, len(p))
	var analytic float64
	for i := range u {
		u[i] = float32(rng.NormFloat64())
		analytic += float64(u[i]) * float64(g[i])
	}
	const eps = 1e-3
	var lp [2]float64
	for k, sign := range []float32{1, -1} {
		q := make([]float32, len(p))
		for i := range q {
			q[i] = p[i] + sign*eps*u[i]
		}
		if err := kernels.WriteFloat32(d, m.params, q); err != nil {
			t.Fatal(err)
		}
		if lp[k], err = m.forward(a, false); err != nil {
			t.Fatal(err)
		}
	}
	numeric := (lp[0] - lp[1]) / (2 * eps)
	if math.Abs(numeric-analytic) > 0.03*math.Abs(analytic)+1e-3 {
		t.Fatalf("gradient along a random direction: analytic %.6g, numeric %.6g", analytic, numeric)
	}
	t.Logf("analytic %.6g numeric %.6g", analytic, numeric)
}

func TestTrainOneRankLossFalls(t *testing.T) {
	m, _ := newTestModel(t, 2)
	var log bytes.Buffer
	tr, err := New(context.Background(), m, nil, Options{
		Data: NewDataset(testText, 0.1), Steps: 60, Batch: 4, LR: 1e-2, Seed: 7, Log: &log, LogEvery: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tr.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !(st.LastLoss < 0.7*st.FirstLoss) {
		t.Fatalf("loss %.3f -> %.3f: want a fall of 30%%\n%s", st.FirstLoss, st.LastLoss, log.String())
	}
	if !strings.Contains(log.String(), "step 60/60 loss") {
		t.Fatalf("no progress line for the last step:\n%s", log.String())
	}
	ev, err := m.Eval(NewDataset(testText, 0.1), 4, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !(ev.Loss < st.FirstLoss) {
		t.Fatalf("held-out loss %.3f not below the first training loss %.3f", ev.Loss, st.FirstLoss)
	}
	out, err := m.Generate([]byte("the "), 8, 0, 1)
	if err != nil || len(out) != 8 {
		t.Fatalf("generate: %q, %v", out, err)
	}
	t.Logf("loss %.3f -> %.3f, eval %.3f, greedy %q", st.FirstLoss, st.LastLoss, ev.Loss, out)
}

// runRanks trains world ranks in this process over loopback TCP and returns
// each rank's final parameters.
func runRanks(t *testing.T, world int, o Options) ([][]float32, []Stats) {
	t.Helper()
	return runRanksOn(t, world, o, nil)
}

// runRanksOn runs world ranks as goroutines over TCP; setup, when set,
// wraps rank r's device and options (another gradient path).
func runRanksOn(t *testing.T, world int, o Options, setup func(r int, d kernels.Device, o *Options) kernels.Device) ([][]float32, []Stats) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, stats, errs := make([][]float32, world), make([]Stats, world), make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Go(func() {
			co := collective.Options{Rank: r, WorldSize: world, MasterAddr: ln.Addr().String(), TransportName: "tcp"}
			if r == 0 {
				co.Listener = ln
			}
			comm, err := collective.New(ctx, co)
			if err != nil {
				errs[r] = err
				return
			}
			defer comm.Close()
			cd := cpu.New(1)
			defer cd.Close()
			var d kernels.Device = cd
			ro := o
			if setup != nil {
				d = setup(r, d, &ro)
			}
			m, err := NewModel(d, testConfig(t))
			if err != nil {
				errs[r] = err
				return
			}
			if r != 0 {
				ro.Log = nil
			}
			tr, err := New(ctx, m, comm, ro)
			if err != nil {
				errs[r] = err
				return
			}
			if stats[r], errs[r] = tr.Run(ctx); errs[r] != nil {
				return
			}
			out[r], errs[r] = kernels.Download(d, m.trainable().params) // the adapter, on a LoRA run
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return out, stats
}

func TestTwoRanksStayIdenticalAndResume(t *testing.T) {
	dir := t.TempDir()
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o := Options{
		ModelName: "gpt-test", Data: NewDataset(testText, 0.1), Steps: 6, Batch: 2, LR: 1e-2, Seed: 5,
		Store: store, Job: "ft", Every: 3, Keep: 2, Log: &log, LogEvery: 1,
		BucketElems: 1, // a bucket per block: exercise the overlap
	}
	p, stats := runRanks(t, 2, o)
	if !equal(p[0], p[1]) {
		t.Fatal("ranks hold different parameters after training")
	}
	if stats[0].LastLoss != stats[1].LastLoss {
		t.Fatalf("ranks report different mean losses %v, %v", stats[0].LastLoss, stats[1].LastLoss)
	}
	infos, err := checkpoint.List(context.Background(), store, "ft")
	if err != nil || len(infos) != 2 || infos[0].Step != 3 || infos[1].Step != 6 {
		t.Fatalf("checkpoints %+v, %v: want steps 3 and 6", infos, err)
	}
	// A gang restarted after step 3 resumes there and ends where the
	// uninterrupted run ended, bit for bit.
	if err := checkpoint.Delete(context.Background(), store, checkpoint.Ref{Job: "ft", Step: 6}); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	q, stats2 := runRanks(t, 2, o)
	if stats2[0].ResumedFrom != 3 || stats2[1].StartStep != 4 {
		t.Fatalf("resumed from %d, rank 1 started at %d: want 3 and 4\n%s", stats2[0].ResumedFrom, stats2[1].StartStep, log.String())
	}
	if !equal(q[0], p[0]) || !equal(q[1], p[0]) {
		t.Fatal("resumed run ended with different parameters from the uninterrupted one")
	}
	// The checkpoint loads as a model; a fresh run starts from it as a base.
	m, step, err := LoadModel(context.Background(), cpu.New(1), "file://"+dir+"/ft", nil)
	if err != nil || step != 6 {
		t.Fatalf("load model: step %d, %v", step, err)
	}
	if !equal(params(t, m), p[0]) {
		t.Fatal("loaded parameters differ from the trained ones")
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestBench(t *testing.T) {
	res, err := Bench(context.Background(), BenchConfig{
		Model: "gpt-test", Ranks: []int{1, 2}, ThreadsPerRank: 1, Batch: 2, Warmup: 1, Steps: 2, Transport: "tcp", Text: testText,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 3 || !res.Runs[1].Identical || !res.Runs[2].Independent || res.CommEfficiency <= 0 || res.TokensPerSecByN["2"] <= 0 || res.ScalingEfficiency <= 0 {
		t.Fatalf("bench result %+v", res)
	}
}

// A run stopped between steps (SIGTERM, preemption) checkpoints the last
// completed step; the restarted run resumes there and ends bit-identical to
// an uninterrupted run.
func TestStopCheckpointsAndResumes(t *testing.T) {
	run := func(o Options, ctx context.Context) ([]float32, Stats, error) {
		m, d := newTestModel(t, 1)
		tr, err := New(ctx, m, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		st, err := tr.Run(ctx)
		p, derr := kernels.Download(d, m.params)
		if derr != nil {
			t.Fatal(derr)
		}
		return p, st, err
	}
	base := Options{Data: NewDataset(testText, 0.1), Steps: 8, Batch: 2, LR: 1e-2, Seed: 9, Job: "j", LogEvery: 1}
	want, _, err := run(base, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	store, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var reported []int64
	o := base
	o.Store, o.Every = store, 100
	o.OnCheckpoint = func(step int64) { reported = append(reported, step) }
	ctx, cancel := context.WithCancel(context.Background())
	var lines, figures []int
	o.OnProgress = func(step int, _ string) {
		lines = append(lines, step)
		if step == 3 {
			cancel()
		}
	}
	o.OnFigures = func(step int, loss, tps float64) {
		if !(loss > 0) || !(tps > 0) {
			t.Errorf("step %d figures: loss %v, %v tokens/s", step, loss, tps)
		}
		figures = append(figures, step)
	}
	if _, _, err := run(o, ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v, want context.Canceled", err)
	}
	if !slices.Equal(lines, figures) || len(figures) == 0 {
		t.Errorf("figures at steps %v, progress lines at %v: want the same", figures, lines)
	}
	o.OnFigures = nil
	if len(reported) != 1 || reported[0] != 3 {
		t.Fatalf("checkpoints reported %v, want [3]", reported)
	}
	o.OnProgress, o.OnCheckpoint = nil, nil
	got, st, err := run(o, context.Background())
	if err != nil || st.StartStep != 4 {
		t.Fatalf("resumed run: start %d, %v", st.StartStep, err)
	}
	if !equal(got, want) {
		t.Fatal("stopped and resumed run differs from the uninterrupted one")
	}
}

func TestSplitJobURI(t *testing.T) {
	for _, c := range []struct{ in, store, job string }{
		{"file:///data/ckpt/nlp/ft-1", "file:///data/ckpt/nlp", "ft-1"},
		{"file:///data/ckpt/nlp/ft-1/", "file:///data/ckpt/nlp", "ft-1"},
		{"s3://bucket/prefix/nlp/ft-1?endpoint=http://127.0.0.1:9000", "s3://bucket/prefix/nlp?endpoint=http://127.0.0.1:9000", "ft-1"},
		{"/abs/dir/job", "file:///abs/dir", "job"},
		{"s3://bucket/ft-1", "s3://bucket", "ft-1"},
	} {
		store, job, err := SplitJobURI(c.in)
		if err != nil || store != c.store || job != c.job {
			t.Errorf("SplitJobURI(%q) = %q, %q, %v; want %q, %q", c.in, store, job, err, c.store, c.job)
		}
	}
	for _, bad := range []string{"s3://bucket", "file:///data/ckpt/nlp/bad name"} {
		if _, _, err := SplitJobURI(bad); err == nil {
			t.Errorf("SplitJobURI(%q): no error", bad)
		}
	}
}
