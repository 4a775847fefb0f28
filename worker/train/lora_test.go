package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/filestore"
)

var testLoRA = LoRAConfig{Rank: 4, Alpha: 8, Targets: []string{LoRAAttn, LoRAMLP}}

// randomAdapter is an adapter with A and B both random (B is zero after
// Init, which would make every check below vacuous).
func randomAdapter(t *testing.T, m *Model, c LoRAConfig, seed uint64) *Adapter {
	t.Helper()
	a, err := NewAdapter(m.d, m.Cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Free)
	rng := rand.New(rand.NewPCG(seed, 1))
	p := make([]float32, a.NumParams())
	for i := range p {
		p[i] = 0.1 * float32(rng.NormFloat64())
	}
	if err := kernels.WriteFloat32(m.d, a.params, p); err != nil {
		t.Fatal(err)
	}
	return a
}

// Base + adapter equals the base with W + (alpha/r)·B·A merged in float64,
// for each target set; and the adapter does change the logits.
func TestLoRAMergedMatchesAdapter(t *testing.T) {
	toks := Encode([]byte("the cat sat on."))
	for _, targets := range [][]string{{LoRAAttn}, {LoRAMLP}, {LoRAAttn, LoRAMLP}} {
		t.Run(strings.Join(targets, "+"), func(t *testing.T) {
			m := perturbedModel(t)
			base := fullLogits(t, m, toks)
			a := randomAdapter(t, m, LoRAConfig{Rank: 3, Alpha: 5, Targets: targets}, 11)
			if err := m.SetAdapter(a); err != nil {
				t.Fatal(err)
			}
			adapted := fullLogits(t, m, toks)
			w, err := a.Weights()
			if err != nil {
				t.Fatal(err)
			}
			if err := m.SetAdapter(nil); err != nil {
				t.Fatal(err)
			}
			if err := w.MergeInto(m); err != nil {
				t.Fatal(err)
			}
			merged := fullLogits(t, m, toks)
			var maxDiff, maxMove float64
			for i := range adapted {
				maxDiff = max(maxDiff, math.Abs(float64(adapted[i]-merged[i])))
				maxMove = max(maxMove, math.Abs(float64(adapted[i]-base[i])))
			}
			if maxDiff > 2e-4 {
				t.Fatalf("adapter vs merged logits differ by %.3g", maxDiff)
			}
			if maxMove < 1e-2 {
				t.Fatalf("the adapter moved the logits by %.3g only: the check is vacuous", maxMove)
			}
			t.Logf("max |adapter - merged| %.2g, max |adapter - base| %.2g", maxDiff, maxMove)
		})
	}
}

// The adapter's gradient against a central difference of the forward, and
// the base's weight gradients are not computed.
func TestLoRAGradientMatchesFiniteDifference(t *testing.T) {
	m := perturbedModel(t)
	d := m.d
	a := randomAdapter(t, m, testLoRA, 3)
	if err := m.SetAdapter(a); err != nil {
		t.Fatal(err)
	}
	const B = 2
	T := m.Cfg.Context
	acts, err := m.actsFor(B)
	if err != nil {
		t.Fatal(err)
	}
	ids, tgts := make([]int32, B*T), make([]int32, B*T)
	if err := NewDataset(testText, 0.1).Batch(1, 1, 0, 1, B, T, ids, tgts); err != nil {
		t.Fatal(err)
	}
	if err := m.setBatch(acts, ids, tgts); err != nil {
		t.Fatal(err)
	}
	if err := firstErr(d.Fill(a.gradAll, 0), d.Fill(m.gradAll, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.forward(acts, true); err != nil {
		t.Fatal(err)
	}
	if err := m.backward(acts, nil); err != nil {
		t.Fatal(err)
	}
	g, err := kernels.Download(d, a.grads)
	if err != nil {
		t.Fatal(err)
	}
	p, err := kernels.Download(d, a.params)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 9))
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
		if err := kernels.WriteFloat32(d, a.params, q); err != nil {
			t.Fatal(err)
		}
		if lp[k], err = m.forward(acts, false); err != nil {
			t.Fatal(err)
		}
	}
	numeric := (lp[0] - lp[1]) / (2 * eps)
	if math.Abs(numeric-analytic) > 0.03*math.Abs(analytic)+1e-3 {
		t.Fatalf("adapter gradient along a random direction: analytic %.6g, numeric %.6g", analytic, numeric)
	}
	// Frozen base: its weight matrices got no gradient.
	for name, b := range map[string]kernels.Buffer{"wte": m.g.wte, "h0.wqkv": m.g.blocks[0].wqkv, "h1.wp": m.g.blocks[1].wp} {
		gb, err := kernels.Download(d, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range gb {
			if v != 0 {
				t.Fatalf("frozen base weight %s got a gradient", name)
			}
		}
	}
	t.Logf("analytic %.6g numeric %.6g", analytic, numeric)
}

// trainBase writes a full training run's checkpoint to store as job
// "base" and returns its URI.
func trainBase(t *testing.T, dir string) string {
	t.Helper()
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := trainJob(t, Options{ModelName: "gpt-test", Data: NewDataset(testText, 0.1), Steps: 150, Batch: 4, LR: 1e-2, Seed: 1, Store: store, Job: "base"}); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir + "/base"
}

// A LoRA fine-tune lowers the loss with the base frozen, saves a small
// adapter checkpoint naming its base, and a stopped run resumes to the
// same adapter bit for bit; an adapter refuses another base.
func TestLoRATrainLowersLossAndResumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	baseURI := trainBase(t, dir)
	// A corpus the base has not seen, so there is something to learn.
	text := []byte(strings.Repeat("lora adapts a frozen base. low rank, small files.\n", 60))
	lora := testLoRA
	run := func(o Options, ctx context.Context) (*Model, Stats, error) {
		m, err := NewModel(cpu.New(1), testConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(ctx, m, nil, o)
		if err != nil {
			return nil, Stats{}, err
		}
		st, err := tr.Run(ctx)
		return m, st, err
	}
	o := Options{ModelName: "gpt-test", Data: NewDataset(text, 0.1), Steps: 40, Batch: 4, LR: 1e-2, Seed: 3, Base: baseURI, LoRA: &lora, LogEvery: 10}
	m0, _, err := run(o, ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := LoadModel(ctx, cpu.New(1), baseURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(params(t, m0), params(t, before)) {
		t.Fatal("a lora fine-tune changed the base's weights")
	}
	want, err := m0.lora.Weights()
	if err != nil {
		t.Fatal(err)
	}

	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o.Store, o.Job, o.Every, o.Log = store, "ad", 100, &log
	stop, cancel := context.WithCancel(ctx)
	o.OnProgress = func(step int, _ string) {
		if step == 20 {
			cancel()
		}
	}
	if _, _, err := run(o, stop); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v, want context.Canceled", err)
	}
	o.OnProgress = nil
	m1, st, err := run(o, ctx)
	if err != nil || st.StartStep != 21 {
		t.Fatalf("resumed run: start %d, %v\n%s", st.StartStep, err, log.String())
	}
	got, err := m1.lora.Weights()
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got.Params, want.Params) {
		t.Fatal("stopped and resumed lora run differs from the uninterrupted one")
	}

	// The adapter checkpoint: small, names its base, loads onto it.
	c, err := checkpoint.Latest(ctx, store, "ad", nil)
	if err != nil {
		t.Fatal(err)
	}
	baseCk, err := OpenCheckpoint(ctx, baseURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Manifest.Metadata[metaLoRABase], checkpoint.JoinURI("file://"+dir, baseCk.Ref); got != want {
		t.Fatalf("adapter records base %q, want %q", got, want)
	}
	ratio := float64(c.Manifest.Bytes()) / float64(baseCk.Manifest.Bytes())
	if !(ratio < 0.5) {
		t.Fatalf("adapter checkpoint %d bytes vs base %d: not small", c.Manifest.Bytes(), baseCk.Manifest.Bytes())
	}
	t.Logf("adapter checkpoint %d bytes, base %d (%.1f%%)", c.Manifest.Bytes(), baseCk.Manifest.Bytes(), 100*ratio)
	adURI := "file://" + dir + "/ad"
	if _, _, err := LoadModel(ctx, cpu.New(1), adURI, nil); err == nil || !strings.Contains(err.Error(), "lora adapter") {
		t.Fatalf("loading an adapter as a model: %v, want a lora adapter error", err)
	}
	ev := func(m *Model) float64 {
		r, err := m.Eval(NewDataset(text, 0.1), 4, 16)
		if err != nil {
			t.Fatal(err)
		}
		return r.Loss
	}
	baseLoss := ev(before)
	a, err := before.LoadAdapter(ctx, adURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := before.SetAdapter(a); err != nil {
		t.Fatal(err)
	}
	adLoss := ev(before)
	if !(adLoss < 0.9*baseLoss) {
		t.Fatalf("held-out loss base %.3f, with adapter %.3f: want a fall of 10%%\n%s", baseLoss, adLoss, log.String())
	}
	t.Logf("held-out loss base %.3f, base+adapter %.3f; trained %s", baseLoss, adLoss, log.String())

	// The eval job's path: base then adapter (the base loaded once), and
	// the adapter alone (its recorded base loaded).
	for _, uris := range [][]string{{baseURI, adURI}, {adURI}} {
		e := NewEvaluator(cpu.New(1), nil)
		var rows []EvalRow
		for _, u := range uris {
			r, err := e.Eval(ctx, u, NewDataset(text, 0.1), 4, 16)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, r)
		}
		last := rows[len(rows)-1]
		if !last.Adapter || last.Base == "" || last.Step != 40 || math.Abs(last.Loss-adLoss) > 1e-9 {
			t.Fatalf("eval rows %+v: want the adapter at step 40 with loss %.6f", rows, adLoss)
		}
		if len(rows) == 2 && (rows[0].Adapter || math.Abs(rows[0].Loss-baseLoss) > 1e-9) {
			t.Fatalf("base row %+v, want loss %.6f", rows[0], baseLoss)
		}
		if len(e.bases) != 1 {
			t.Fatalf("evaluator loaded %d bases, want 1", len(e.bases))
		}
	}

	// Another base (the seeded initialisation) is refused.
	other, err := NewModel(cpu.New(1), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Init(99); err != nil {
		t.Fatal(err)
	}
	if _, err := other.LoadAdapter(ctx, adURI, nil); err == nil || !strings.Contains(err.Error(), "trained on base") {
		t.Fatalf("adapter on another base: %v, want a base mismatch", err)
	}
}

// TestAdapterCheckBase: an adapter made for another base is refused with
// both sides named, as ErrNotAdapterOfBase (an ErrConfig).
func TestAdapterCheckBase(t *testing.T) {
	tiny := presets["gpt-tiny"]
	w := &AdapterWeights{Model: tiny, Base: "file:///ckpt/shake/1", BaseSHA256: "aaaaaaaaaaaaaaaaaaaa"}
	for _, tc := range []struct {
		name  string
		model Config
		sum   string
		want  string // "" when accepted
	}{
		{"its base", tiny, "aaaaaaaaaaaaaaaaaaaa", ""},
		{"other parameters", tiny, "bbbbbbbbbbbbbbbbbbbb",
			"not an adapter of this base: trained on base file:///ckpt/shake/1 (parameters sha256 aaaaaaaaaaaa…), this base's parameters are sha256 bbbbbbbbbbbb…"},
		{"another shape", presets["gpt-small"], "aaaaaaaaaaaaaaaaaaaa",
			"not an adapter of this base: made for model 2 layers x 64 wide, 4 heads, context 64, vocab 256, this base is 4 layers x 128 wide, 4 heads, context 128, vocab 256"},
	} {
		err := w.CheckBase(tc.model, tc.sum)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrNotAdapterOfBase) || !errors.Is(err, ErrConfig) || !strings.Contains(fmt.Sprint(err), tc.want)):
			t.Errorf("%s: %v\nwant ErrNotAdapterOfBase with %q", tc.name, err, tc.want)
		}
	}
}

func TestLoRAConfigValidate(t *testing.T) {
	c := testConfig(t)
	for _, bad := range []LoRAConfig{
		{Rank: 0, Alpha: 1, Targets: []string{LoRAAttn}},
		{Rank: c.Width + 1, Alpha: 1, Targets: []string{LoRAAttn}},
		{Rank: 2, Alpha: -1, Targets: []string{LoRAAttn}},
		{Rank: 2, Alpha: 1, Targets: []string{"embed"}},
		{Rank: 2, Alpha: 1, Targets: []string{LoRAMLP, LoRAMLP}},
	} {
		if err := bad.Validate(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", bad, err)
		}
	}
	d := LoRAConfig{Rank: 8}.WithDefaults()
	if d.Alpha != 16 || len(d.Targets) != 2 {
		t.Fatalf("defaults %+v", d)
	}
}

// Two ranks training one adapter stay bit-identical (the adapter's
// gradients are averaged in one bucket), and a restarted gang resumes the
// adapter to the same end.
func TestLoRATwoRanksStayIdenticalAndResume(t *testing.T) {
	dir := t.TempDir()
	baseURI := trainBase(t, dir)
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	lora := testLoRA
	o := Options{
		ModelName: "gpt-test", Data: NewDataset(testText, 0.1), Steps: 6, Batch: 2, LR: 1e-2, Seed: 5,
		Store: store, Job: "ad2", Every: 3, Base: baseURI, LoRA: &lora,
	}
	p, stats := runRanks(t, 2, o)
	if len(p[0]) != lora.NumParams(testConfig(t)) || !equal(p[0], p[1]) {
		t.Fatalf("ranks hold different adapters (%d, %d parameters)", len(p[0]), len(p[1]))
	}
	if stats[0].LastLoss != stats[1].LastLoss {
		t.Fatalf("ranks report different mean losses %v, %v", stats[0].LastLoss, stats[1].LastLoss)
	}
	if err := checkpoint.Delete(context.Background(), store, checkpoint.Ref{Job: "ad2", Step: 6}); err != nil {
		t.Fatal(err)
	}
	q, stats2 := runRanks(t, 2, o)
	if stats2[1].StartStep != 4 || !equal(q[0], p[0]) || !equal(q[1], p[0]) {
		t.Fatalf("resumed at %d: adapters differ from the uninterrupted run's", stats2[1].StartStep)
	}
}

// A published adapter (no optimizer state) reads back as written.
func TestSaveAdapterRoundTrip(t *testing.T) {
	m := perturbedModel(t)
	w, err := randomAdapter(t, m, LoRAConfig{Rank: 2, Alpha: 3, Targets: []string{LoRAMLP}}, 4).Weights()
	if err != nil {
		t.Fatal(err)
	}
	w.Base, w.BaseSHA256 = "file:///b/base/000000000001", "abc"
	dir := t.TempDir()
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveAdapter(context.Background(), store, "pub", 7, w, nil); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAdapter(context.Background(), "file://"+dir+"/pub", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 7 || got.Base != w.Base || got.BaseSHA256 != "abc" || got.Cfg.String() != w.Cfg.String() || got.Model != w.Model || !equal(got.Params, w.Params) {
		t.Fatalf("read back %+v", got)
	}
}
