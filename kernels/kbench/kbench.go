package kbench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/kernels/cuda"
)

// ErrConfig marks an invalid Config (a usage error for the CLI).
var ErrConfig = errors.New("kbench: invalid config")

// Config selects what to measure.
type Config struct {
	Sizes   []int         // square matmul sizes (default 256, 512, 1024)
	Threads []int         // CPU thread counts (default 1 and GOMAXPROCS)
	MinTime time.Duration // timed budget per measurement (default 300ms); at least 2 runs
	Naive   bool          // measure the naive matmul baseline at every size
	// Layer is the attention shape; layernorm runs on B*T rows of C. The
	// default is one GPT-2-small layer at a short context: B 4, T 256, C 768,
	// 12 heads.
	Layer kernels.AttnShape
	CUDA  bool      // also measure GPU 0 when one is available
	Log   io.Writer // progress lines; nil for none
	// OpenBLAS also measures cblas_sgemm from libopenblas.so.0 when it can
	// be loaded, with its kernel family OpenBLASCore: "" for the best one
	// for this CPU (SkylakeX with AVX-512, Haswell with AVX2), "env" to
	// keep OPENBLAS_CORETYPE from the environment, or a name.
	OpenBLAS     bool
	OpenBLASCore string
}

// Env is the machine the figures come from.
type Env struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go"`
	Kernel     string `json:"cpu_kernel"`
	GPU        string `json:"gpu"`
	OpenBLAS   string `json:"openblas"`
	Commit     string `json:"commit"`
}

// Row is one measurement.
type Row struct {
	Device  string  `json:"device"`
	Op      string  `json:"op"`
	Shape   string  `json:"shape"`
	Threads int     `json:"threads,omitempty"`
	Seconds float64 `json:"seconds"` // per call
	GFLOPS  float64 `json:"gflops,omitempty"`
	// GElems is billions of elements per second, for the memory-bound ops
	// (layernorm, GELU, cross-entropy) where a flop count means little.
	GElems  float64 `json:"gelems_per_s,omitempty"`
	VsNaive float64 `json:"vs_naive,omitempty"` // GFLOPS over the naive matmul's at the same size
	// VsOpenBLAS is GFLOPS over OpenBLAS's at the same size and threads.
	VsOpenBLAS float64 `json:"vs_openblas,omitempty"`
}

// Result is the whole run.
type Result struct {
	Env Env `json:"env"`
	// SGEMMGFLOPS is the CPU backend's matmul keyed "<size>x<threads>t".
	SGEMMGFLOPS map[string]float64 `json:"sgemm_gflops"`
	// NaiveGFLOPS is the naive triple loop keyed the same way (1 thread).
	NaiveGFLOPS map[string]float64 `json:"naive_sgemm_gflops,omitempty"`
	// OpenBLASGFLOPS is cblas_sgemm keyed the same way, when measured.
	OpenBLASGFLOPS map[string]float64 `json:"openblas_sgemm_gflops,omitempty"`
	// CUDAGFLOPS is GPU 0's matmul keyed by size, when measured.
	CUDAGFLOPS map[string]float64 `json:"cuda_sgemm_gflops,omitempty"`
	Rows       []Row              `json:"rows"`
}

func (c *Config) defaults() error {
	if len(c.Sizes) == 0 {
		c.Sizes = []int{256, 512, 1024}
	}
	if len(c.Threads) == 0 {
		c.Threads = []int{1}
		if n := runtime.GOMAXPROCS(0); n > 1 {
			c.Threads = append(c.Threads, n)
		}
	}
	if c.MinTime <= 0 {
		c.MinTime = 300 * time.Millisecond
	}
	for _, s := range c.Sizes {
		if s < 1 || s > 8192 {
			return fmt.Errorf("size %d: want 1..8192: %w", s, ErrConfig)
		}
	}
	for _, t := range c.Threads {
		if t < 1 || t > 1024 {
			return fmt.Errorf("threads %d: want 1..1024: %w", t, ErrConfig)
		}
	}
	if c.Layer == (kernels.AttnShape{}) {
		c.Layer = kernels.AttnShape{B: 4, T: 256, C: 768, Heads: 12}
	}
	if l := c.Layer; l.B < 1 || l.T < 1 || l.Heads < 1 || l.C < l.Heads || l.C%l.Heads != 0 {
		return fmt.Errorf("layer %+v: want positive sizes and C divisible by heads: %w", l, ErrConfig)
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// Run measures; it fails if any kernel disagrees with the reference.
func Run(cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	maxT := 1
	for _, t := range cfg.Threads {
		maxT = max(maxT, t)
	}
	d := cpu.New(maxT)
	defer d.Close()
	res := &Result{Env: environment(d), SGEMMGFLOPS: map[string]float64{}}
	if cfg.Naive {
		res.NaiveGFLOPS = map[string]float64{}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	useBLAS := false
	if cfg.OpenBLAS {
		core, err := openBLAS(cfg.OpenBLASCore)
		if err != nil {
			res.Env.OpenBLAS = "not measured: " + err.Error()
		} else {
			res.Env.OpenBLAS = "core " + core
			if ct := os.Getenv("OPENBLAS_CORETYPE"); ct != "" {
				res.Env.OpenBLAS += " (OPENBLAS_CORETYPE=" + ct + ")"
			}
			res.OpenBLASGFLOPS = map[string]float64{}
			useBLAS = true
		}
	} else {
		res.Env.OpenBLAS = "not measured"
	}
	for _, n := range cfg.Sizes {
		a, b := randn(rng, n*n), randn(rng, n*n)
		if cfg.Naive {
			c := make([]float32, n*n)
			secs := timeIt(cfg.MinTime, func() { naiveMatMul(c, a, b, n, n, n) })
			g := 2 * float64(n) * float64(n) * float64(n) / secs / 1e9
			res.NaiveGFLOPS[fmt.Sprintf("%dx1t", n)] = round(g)
			res.Rows = append(res.Rows, Row{Device: "cpu", Op: "matmul naive", Shape: cube(n), Threads: 1, Seconds: secs, GFLOPS: round(g)})
			fmt.Fprintf(cfg.Log, "naive matmul %d: %.2f GFLOP/s\n", n, g)
		}
		for _, t := range cfg.Threads {
			d.SetThreads(t)
			secs, blasSecs, err := timeMatMulVsBLAS(d, a, b, n, t, useBLAS, cfg.MinTime)
			if err != nil {
				return nil, fmt.Errorf("cpu matmul %d, %d threads: %w", n, t, err)
			}
			g := 2 * float64(n) * float64(n) * float64(n) / secs / 1e9
			key := fmt.Sprintf("%dx%dt", n, t)
			res.SGEMMGFLOPS[key] = round(g)
			row := Row{Device: "cpu", Op: "matmul", Shape: cube(n), Threads: t, Seconds: secs, GFLOPS: round(g)}
			if base := res.NaiveGFLOPS[fmt.Sprintf("%dx1t", n)]; base > 0 {
				row.VsNaive = round(g / base)
			}
			fmt.Fprintf(cfg.Log, "matmul %d, %d threads: %.2f GFLOP/s\n", n, t, g)
			if !useBLAS {
				res.Rows = append(res.Rows, row)
				continue
			}
			blasG := 2 * float64(n) * float64(n) * float64(n) / blasSecs / 1e9
			row.VsOpenBLAS = round(g / blasG)
			res.OpenBLASGFLOPS[key] = round(blasG)
			res.Rows = append(res.Rows, row, Row{Device: "cpu", Op: "matmul openblas", Shape: cube(n), Threads: t,
				Seconds: blasSecs, GFLOPS: round(blasG)})
			fmt.Fprintf(cfg.Log, "openblas matmul %d, %d threads: %.2f GFLOP/s\n", n, t, blasG)
		}
	}
	for _, t := range cfg.Threads {
		d.SetThreads(t)
		rows, err := timeOthers(d, "cpu", t, cfg.Layer, rng, cfg.MinTime)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, rows...)
	}
	if cfg.CUDA {
		if err := runCUDA(cfg, res, rng); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func runCUDA(cfg Config, res *Result, rng *rand.Rand) error {
	if err := cuda.Available(); err != nil {
		res.Env.GPU = "none: " + strings.TrimSuffix(err.Error(), ": "+kernels.ErrUnavailable.Error())
		return nil
	}
	g, err := cuda.New(0)
	if err != nil {
		return err
	}
	defer g.Close()
	res.Env.GPU = g.Name()
	if ds, ok := kernels.Device(g).(kernels.Describer); ok {
		res.Env.GPU = ds.Describe()
	}
	res.CUDAGFLOPS = map[string]float64{}
	for _, n := range append(append([]int{}, cfg.Sizes...), 4096) {
		a, b := randn(rng, n*n), randn(rng, n*n)
		secs, _, err := timeMatMulVsBLAS(g, a, b, n, 0, false, cfg.MinTime)
		if err != nil {
			return fmt.Errorf("cuda matmul %d: %w", n, err)
		}
		gf := 2 * float64(n) * float64(n) * float64(n) / secs / 1e9
		res.CUDAGFLOPS[fmt.Sprint(n)] = round(gf)
		res.Rows = append(res.Rows, Row{Device: "cuda", Op: "matmul", Shape: cube(n), Seconds: secs, GFLOPS: round(gf)})
	}
	rows, err := timeOthers(g, "cuda", 0, cfg.Layer, rng, cfg.MinTime)
	res.Rows = append(res.Rows, rows...)
	return err
}

func cube(n int) string { return fmt.Sprintf("%dx%dx%d", n, n, n) }

func round(x float64) float64 { return math.Round(x*100) / 100 }

func randn(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// timeIt runs f after one warm-up at least three times and until
// budget has passed, and returns the fastest call in seconds. The best time,
// not the mean, because this machine is shared: other work only ever adds
// time, so the minimum is the closest to what the kernel itself costs.
//
// A call slower than the whole budget (the naive matmul at 1024) is run
// once: its warm-up is its measurement.
func timeIt(budget time.Duration, f func()) float64 {
	t0 := time.Now()
	f()
	if first := time.Since(t0); first >= budget {
		return first.Seconds()
	}
	start := time.Now()
	best := math.Inf(1)
	for n := 0; n < 3 || time.Since(start) < budget; n++ {
		t0 := time.Now()
		f()
		best = min(best, time.Since(t0).Seconds())
	}
	return best
}

// naiveMatMul is the obviously-correct baseline: c[i][j] = sum_p a[i][p]*b[p][j].
func naiveMatMul(c, a, b []float32, m, n, k int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += a[i*k+p] * b[p*n+j]
			}
			c[i*n+j] = s
		}
	}
}

// blasRounds is how many times the Ark and OpenBLAS timings alternate: the
// machine is shared, so each gets several chances at a quiet moment.
const blasRounds = 3

// timeMatMul checks the device's n^3 matmul against float64 dot products at
// sampled entries, then times it (best call); with withBLAS it alternates
// rounds of Ark and OpenBLAS on threads threads, pausing after each
// OpenBLAS round because its threads spin for a while after a call and
// would steal the cores from the next measurement.
func timeMatMulVsBLAS(d kernels.Device, a, b []float32, n, threads int, withBLAS bool, budget time.Duration) (secs, blasSecs float64, err error) {
	ab, err := kernels.Upload(d, a)
	if err != nil {
		return 0, 0, err
	}
	defer d.Free(ab)
	bb, err := kernels.Upload(d, b)
	if err != nil {
		return 0, 0, err
	}
	defer d.Free(bb)
	cb, err := d.Alloc(kernels.Float32, n*n)
	if err != nil {
		return 0, 0, err
	}
	defer d.Free(cb)
	p := kernels.MatMulArgs{M: n, N: n, K: n, Alpha: 1}
	if err := d.MatMul(cb, ab, bb, nil, p); err != nil {
		return 0, 0, err
	}
	c, err := kernels.Download(d, cb)
	if err != nil {
		return 0, 0, err
	}
	for s := 0; s < 64; s++ {
		i, j := (s*7919)%n, (s*104729)%n
		var want float64
		for q := 0; q < n; q++ {
			want += float64(a[i*n+q]) * float64(b[q*n+j])
		}
		if diff := math.Abs(float64(c[i*n+j]) - want); diff > 1e-4*math.Sqrt(float64(n))*(1+math.Abs(want)) {
			return 0, 0, fmt.Errorf("wrong result: c[%d][%d] = %g, want %g", i, j, c[i*n+j], want)
		}
	}
	var runErr error
	ark := func() {
		if err := d.MatMul(cb, ab, bb, nil, p); err != nil && runErr == nil {
			runErr = err
		}
		if err := d.Sync(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if !withBLAS {
		return timeIt(budget, ark), 0, runErr
	}
	hc := make([]float32, n*n)
	secs, blasSecs = math.Inf(1), math.Inf(1)
	for r := 0; r < blasRounds; r++ {
		secs = min(secs, timeIt(budget/blasRounds, ark))
		blasSecs = min(blasSecs, timeIt(budget/blasRounds, func() { blasSGEMM(hc, a, b, n, threads) }))
		time.Sleep(200 * time.Millisecond)
	}
	return secs, blasSecs, runErr
}

func environment(d *cpu.Device) Env {
	e := Env{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		Kernel: d.Describe(), CPU: runtime.GOARCH, GPU: "not measured"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				e.Commit = s.Value[:12]
			}
		}
	}
	return e
}
