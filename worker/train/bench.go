package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
)

// BenchConfig configures Bench: the training step of Model at each world
// size in Ranks, every rank a goroutine of this process with its own CPU
// Device of ThreadsPerRank threads (one "device"), ranks connected over
// loopback through collective (Transport: tcp or shm).
type BenchConfig struct {
	Model          string
	Ranks          []int
	ThreadsPerRank int
	Batch          int // sequences per rank per step
	Warmup, Steps  int // untimed and timed steps
	Rounds         int // runs of each configuration, best kept
	Transport      string
	Text           []byte
}

// BenchRun is one world size's figures, per rank (averaged over ranks).
type BenchRun struct {
	Ranks int `json:"ranks"`
	// Independent: the ranks ran side by side without communicating (the
	// control run: what the cores give n ranks without the collective).
	Independent       bool    `json:"independent,omitempty"`
	TokensPerSec      float64 `json:"tokens_per_sec_per_device"`
	TotalTokensPerSec float64 `json:"tokens_per_sec_total"`
	StepMS            float64 `json:"step_ms"`
	ComputeMS         float64 `json:"compute_ms"`
	ExposedCommMS     float64 `json:"exposed_comm_ms"`
	MFU               float64 `json:"mfu"`
	Loss              float64 `json:"loss"`
	Identical         bool    `json:"params_identical"` // every rank ended with the same parameters
}

// BenchResult is the whole benchmark.
type BenchResult struct {
	Env               map[string]string  `json:"env"`
	Model             string             `json:"model"`
	Params            int                `json:"params"`
	TokensPerStep     int                `json:"tokens_per_step_per_device"`
	FLOPsPerToken     float64            `json:"flops_per_token"`
	PeakGFLOPs        float64            `json:"peak_gflops_per_device"` // measured matmul, MFU's denominator
	Runs              []BenchRun         `json:"runs"`
	TokensPerSecByN   map[string]float64 `json:"tokens_per_sec_per_device"`
	MFUByN            map[string]float64 `json:"mfu"`
	ScalingEfficiency float64            `json:"scaling_efficiency"` // largest world's per-device tokens/s over the 1-rank figure
	// CommEfficiency is the largest world's tokens/s over the same number
	// of ranks run independently: the share of the scaling loss that is
	// not ranks sharing cores with each other (or with other work).
	CommEfficiency float64 `json:"comm_efficiency,omitempty"`
}

// Bench measures tokens/s per device at each world size.
func Bench(ctx context.Context, bc BenchConfig) (*BenchResult, error) {
	cfg, err := Preset(bc.Model)
	if err != nil {
		return nil, err
	}
	if bc.ThreadsPerRank < 1 || bc.Batch < 1 || bc.Steps < 1 || len(bc.Ranks) == 0 {
		return nil, fmt.Errorf("%w: bench needs threads, batch, steps >= 1 and rank counts", ErrConfig)
	}
	peak := matmulPeak(bc.ThreadsPerRank)
	res := &BenchResult{
		Model: bc.Model, Params: cfg.NumParams(), TokensPerStep: bc.Batch * cfg.Context,
		FLOPsPerToken: cfg.FLOPsPerToken(), PeakGFLOPs: peak / 1e9,
		TokensPerSecByN: map[string]float64{}, MFUByN: map[string]float64{},
	}
	d := cpu.New(bc.ThreadsPerRank)
	res.Env = benchEnv(d.Describe(), bc)
	d.Close()
	ds := NewDataset(bc.Text, 0.1)
	// Every configuration runs Rounds times, interleaved, and keeps its
	// best round: on a shared machine other work only ever slows a round,
	// and interleaving gives each configuration the quiet moments too.
	type conf struct {
		n           int
		independent bool
	}
	var confs []conf
	for _, n := range bc.Ranks {
		confs = append(confs, conf{n, false})
		if n > 1 {
			confs = append(confs, conf{n, true})
		}
	}
	best := make([]BenchRun, len(confs))
	for range max(1, bc.Rounds) {
		for i, c := range confs {
			run, err := benchWorld(ctx, bc, cfg, ds, c.n, c.independent)
			if err != nil {
				return nil, fmt.Errorf("%d ranks (independent %v): %w", c.n, c.independent, err)
			}
			if run.TokensPerSec > best[i].TokensPerSec {
				best[i] = run
			}
		}
	}
	var base float64
	for i, c := range confs {
		run := best[i]
		run.MFU = run.TokensPerSec * res.FLOPsPerToken / peak
		res.Runs = append(res.Runs, run)
		switch {
		case c.independent:
			res.CommEfficiency = res.TokensPerSecByN[fmt.Sprint(c.n)] / run.TokensPerSec
		case c.n == 1:
			base = run.TokensPerSec
			fallthrough
		default:
			key := fmt.Sprint(c.n)
			res.TokensPerSecByN[key], res.MFUByN[key] = run.TokensPerSec, run.MFU
			if c.n > 1 && base > 0 {
				res.ScalingEfficiency = run.TokensPerSec / base
			}
		}
	}
	return res, nil
}

func benchWorld(ctx context.Context, bc BenchConfig, cfg Config, ds *Dataset, world int, independent bool) (BenchRun, error) {
	var ln net.Listener
	if world > 1 && !independent {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return BenchRun{}, err
		}
	}
	type out struct {
		tps, step, compute, comm, loss float64
		params                         []float32
		err                            error
	}
	outs := make([]out, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Go(func() {
			o := &outs[r]
			var comm Comm
			if world > 1 && !independent {
				co := collective.Options{Rank: r, WorldSize: world, MasterAddr: ln.Addr().String(), TransportName: bc.Transport}
				if r == 0 {
					co.Listener = ln
				}
				c, err := collective.New(ctx, co)
				if err != nil {
					o.err = err
					return
				}
				defer c.Close()
				comm = c
			}
			d := cpu.New(bc.ThreadsPerRank)
			defer d.Close()
			m, err := NewModel(d, cfg)
			if err != nil {
				o.err = err
				return
			}
			tr, err := New(ctx, m, comm, Options{Data: ds, Steps: bc.Warmup + bc.Steps, Batch: bc.Batch, LR: 3e-3, Seed: 1})
			if err != nil {
				o.err = err
				return
			}
			for step := 1; step <= bc.Warmup; step++ {
				if _, _, o.err = tr.Step(ctx, step); o.err != nil {
					return
				}
			}
			tr.stats = Stats{}
			start := time.Now()
			for step := bc.Warmup + 1; step <= bc.Warmup+bc.Steps; step++ {
				if o.loss, _, o.err = tr.Step(ctx, step); o.err != nil {
					return
				}
			}
			el := time.Since(start)
			n := float64(bc.Steps)
			o.tps = n * float64(bc.Batch*cfg.Context) / el.Seconds()
			o.step = el.Seconds() * 1e3 / n
			o.compute = tr.stats.Compute.Seconds() * 1e3 / n
			o.comm = tr.stats.ExposedComm.Seconds() * 1e3 / n
			o.params, o.err = kernels.Download(d, m.params)
		})
	}
	wg.Wait()
	run := BenchRun{Ranks: world, Independent: independent, Identical: !independent}
	for r, o := range outs {
		if o.err != nil {
			return run, fmt.Errorf("rank %d: %w", r, o.err)
		}
		w := 1 / float64(world)
		run.TokensPerSec += o.tps * w
		run.TotalTokensPerSec += o.tps
		run.StepMS += o.step * w
		run.ComputeMS += o.compute * w
		run.ExposedCommMS += o.comm * w
		run.Loss = o.loss
		if !independent && !slicesEqualBits(o.params, outs[0].params) {
			run.Identical = false
		}
	}
	return run, nil
}

func slicesEqualBits(a, b []float32) bool {
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

// matmulPeak is the device's matmul FLOP/s at 512^3 (best of 5): what MFU
// is measured against on a CPU, which has no datasheet peak here.
func matmulPeak(threads int) float64 {
	const n = 512
	d := cpu.New(threads)
	defer d.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	host := make([]float32, n*n)
	for i := range host {
		host[i] = float32(rng.NormFloat64())
	}
	a, err1 := kernels.Upload(d, host)
	b, err2 := kernels.Upload(d, host)
	c, err3 := d.Alloc(kernels.Float32, n*n)
	if err1 != nil || err2 != nil || err3 != nil {
		return 1
	}
	best := time.Duration(1 << 62)
	for range 5 {
		t := time.Now()
		if err := d.MatMul(c, a, b, nil, kernels.MatMulArgs{M: n, N: n, K: n, Alpha: 1}); err != nil {
			return 1
		}
		best = min(best, time.Since(t))
	}
	return 2 * n * n * n / best.Seconds()
}

func benchEnv(device string, bc BenchConfig) map[string]string {
	env := map[string]string{
		"os": runtime.GOOS + "/" + runtime.GOARCH, "cores": fmt.Sprint(runtime.NumCPU()),
		"device": device, "go": runtime.Version(), "cpu": "unknown", "commit": "unknown",
		"ranks": fmt.Sprintf("goroutines of one process, %s over loopback, %d thread(s) each", bc.Transport, bc.ThreadsPerRank),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				env["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		env["loadavg"] = strings.Join(strings.Fields(string(b))[:3], " ") // others' work on a shared machine skews the figures
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				env["commit"] = s.Value[:12]
			}
		}
	}
	return env
}
