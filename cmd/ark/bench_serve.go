package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/worker/serve"
	"github.com/ark-sched/ark/worker/train"
)

func init() { benchCommands = append(benchCommands, newBenchServeCmd) }

// serveBenchRow is one row of `ark bench serve`, named as issue 12 asks.
type serveBenchRow struct {
	Adapters int `json:"adapters"`
	serve.LoadResult
	// ServerCPUUsPerToken is the CPU time the server process spent per
	// output token (median of the rounds; 0 where /proc cannot say): what
	// a token costs, which a shared machine's load moves far less than
	// the rates (bench_serve_cpu.go).
	ServerCPUUsPerToken float64 `json:"server_cpu_us_per_token"`
	// ClientCPUUsPerToken is the CPU time the load generator (this
	// process, which does nothing else while a row runs) spent per output
	// token, median of the rounds: on a machine whose cores it shares with
	// the server, what the clients cost is taken from the server
	// (worker/serve loadgen.go).
	ClientCPUUsPerToken float64 `json:"client_cpu_us_per_token"`
	// MeanBatch is the rows a decode step carried on average (median of
	// the rounds): how much of the concurrency batching turned into
	// shared steps.
	MeanBatch float64 `json:"mean_batch"`
	// StepTimeBatch is the rows the decode steps' time carried: each
	// step's rows weighted by its duration (median of the rounds; the
	// server's /v1/health phases). The mean batch weights every step
	// alike, and a step of one row is a tenth as long as one of 32: a
	// closed loop's cohorts, which finish together, leave a row or two
	// decoding alone in many short steps while the rest come back
	// (bench/README.md).
	StepTimeBatch float64 `json:"step_time_batch"`
	// Phases say where the row's time went in the server (medians of the
	// rounds, field by field; absent where the server does not report
	// them).
	Phases *rowPhases `json:"phases,omitempty"`
}

type serveBenchResult struct {
	Env  map[string]string `json:"env"`
	Rows []serveBenchRow   `json:"rows"`
	// RulesOverheadMsP99 is what the bench's input rules add to the p99
	// time to the first token at concurrency 1 (they run before a request
	// is queued); Rules has the rest (bench_serve_rules.go).
	RulesOverheadMsP99 *float64       `json:"rules_overhead_ms_p99"`
	Rules              *rulesOverhead `json:"rules,omitempty"`
	// ColdAdapterTTFTRatio is the median TTFT with twice as many adapters
	// in use as compute slots over the median with all of them in slots.
	ColdAdapterTTFTRatio float64          `json:"cold_adapter_ttft_ratio"`
	Cold, Warm           serve.LoadResult `json:"-"`
}

func newBenchServeCmd() *cobra.Command {
	var (
		base, model, shape          string
		adapterCounts, concurrency  []int
		slots, threads, rank, reqPC int
		promptBytes, outputTokens   int
		rate                        float64
		asJSON, rules, cold         bool
		profileDir, weights         string
		seed                        uint64
		repeat                      int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serving throughput and latency of one base with 0, 1 and 100 LoRA adapters at concurrency 1, 8, 32",
		Long: `Starts a real inference server process (ark task serve) on the --base
checkpoint with 100 random LoRA adapters of --rank (written as checkpoints to a
temporary store and loaded into host memory before timing), and drives it with
a closed-loop load generator: --concurrency clients, each sending its next
streamed /v1/completions request (--prompt-bytes prompt, --output-tokens at
temperature 0, models drawn uniformly and seeded) when the last ends, or,
with --rate, Poisson arrivals with the row's concurrency as the cap. Per row
(adapters in use x concurrency) it prints vLLM's serving benchmark figures:
request and output throughput, TTFT and TPOT p50/p99, failed requests, the
server process's CPU time per output token (which a shared machine's load
moves far less than the rates), the load generator's own (this process's CPU
per output token: it shares the machine with the server), the mean decode
batch and the step-time batch (each step's rows weighted by its duration), and
on its progress log (and in --json) where the server's time went: its scheduler
loop's shares idle, prefilling and stepping, and a request's milliseconds in
the handler, queued, prefilling, decoding and ending its stream. The grid runs --repeat times, interleaved, and
each row reports its median round. Then the cold-adapter ratio: median TTFT
with twice as many adapters in use as --adapter-slots over the median with all
of them in slots.

--model-shape gives the seeded base a shape of its own, e.g. GPT-2 small's
(layers=12,heads=12,width=768,context=256, with the byte vocabulary): the
builtin models' weights fit in a core's L2, so their tokens cost mostly the
server's per-token overheads, not the weight reads that batching and 1+N
share. --rules=false and --cold=false skip those measurements (on a large
shape, the rules' 288 requests at concurrency 1 take minutes).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, end := benchProgress(cmd, asJSON)
			res, err := benchServe(ctx, log, base, model, shape, rules, cold, adapterCounts, concurrency, slots, threads, rank, reqPC, promptBytes, outputTokens, rate, seed, repeat, profileDir, weights)
			end()
			if err != nil {
				return err
			}
			if asJSON || wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), res)
			}
			writeServeBench(cmd.OutOrStdout(), res, slots)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "base", "examples/base/gpt-tiny", "base checkpoint (STORE_URI/JOB[/STEP] or a local path)")
	f.StringVar(&model, "model", "", fmt.Sprintf("instead of --base, a seeded base of this builtin model %v (one training step from the initialisation)", train.Presets()))
	f.StringVar(&shape, "model-shape", "", "instead of --base, a seeded base of this shape: comma-separated layers=, heads=, width=, context= over --model's (gpt-tiny's without it), byte vocabulary; GPT-2 small's is layers=12,heads=12,width=768,context=256")
	f.BoolVar(&rules, "rules", true, "measure what intervention rules add (288 requests at concurrency 1; false: rules_overhead_ms_p99 is null in --json)")
	f.BoolVar(&cold, "cold", true, "measure the cold-adapter TTFT ratio (two more runs at the last concurrency; false: cold_adapter_ttft_ratio is 0 in --json)")
	f.IntSliceVar(&adapterCounts, "adapters", []int{0, 1, 100}, "adapters in use per row (0: the base alone), mixed uniformly across requests")
	f.IntSliceVar(&concurrency, "concurrency", []int{1, 8, 32}, "closed-loop clients per row")
	f.IntVar(&slots, "adapter-slots", 32, "the server's compute slots (the cold row uses twice as many adapters)")
	f.IntVar(&threads, "threads", 1, "the server's compute threads")
	f.IntVar(&rank, "rank", 8, "the adapters' LoRA rank (alpha 2x, attn and mlp)")
	f.IntVar(&reqPC, "requests-per-client", 4, "requests per client in each row")
	f.IntVar(&promptBytes, "prompt-bytes", 32, "prompt length (bytes = tokens)")
	f.IntVar(&outputTokens, "output-tokens", 64, "output tokens per request")
	f.Float64Var(&rate, "rate", 0, "Poisson arrivals at this many requests/s, the row's concurrency capping those in flight (0: closed loop)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of Markdown")
	f.IntVar(&repeat, "repeat", 3, "rounds of the whole grid of rows; each row reports its median round (a shared machine's bursts land on one round)")
	f.Uint64Var(&seed, "seed", 0, "seed of the requests' prompts and models (each row draws from it and its own numbers; 0 is the recorded tables' draw)")
	f.StringVar(&weights, "weights", serve.WeightsFloat32, "how the server keeps the base's weights: float32 or bf16 (ark task serve --weights)")
	f.StringVar(&profileDir, "profile-dir", "", "write CPU profiles here: server.pprof (the ark task serve process, the whole run) and load.pprof (this process from the server's start on: the load generator)")
	return cmd
}

func benchServe(ctx context.Context, log io.Writer, base, model, shape string, rules, cold bool, counts, conc []int, slots, threads, rank, reqPC, promptBytes, outputTokens int, rate float64, seed uint64, repeat int, profileDir, weights string) (*serveBenchResult, error) {
	if repeat < 1 {
		return nil, usagef("--repeat must be >= 1")
	}
	if err := weightsFlag(weights); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ark-bench-serve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var serverProfile string
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return nil, usageError{fmt.Errorf("--profile-dir: %w", err)}
		}
		serverProfile = filepath.Join(profileDir, "server.pprof")
	}
	var modelDesc string
	if model != "" || shape != "" {
		cfg, name, err := benchModel(model, shape)
		if err != nil {
			return nil, err
		}
		if base, err = writeBenchBase(ctx, dir, name, cfg); err != nil {
			return nil, err
		}
		modelDesc = fmt.Sprintf("%s (%s; %.1fM parameters, %.0f MB float32)", name, shapeWords(cfg), float64(cfg.NumParams())/1e6, float64(cfg.NumParams())*4/1e6)
	}
	if !strings.Contains(base, "://") {
		abs, err := filepath.Abs(base)
		if err != nil {
			return nil, err
		}
		base = "file://" + abs
	}
	nAdapters := 2 * slots
	for _, c := range counts {
		nAdapters = max(nAdapters, c)
	}
	names, err := writeBenchAdapters(ctx, dir, base, nAdapters, rank)
	if err != nil {
		return nil, err
	}
	url, pid, stop, err := startBenchServer(ctx, log, dir, base, names, slots, threads, rank, serverProfile, weights)
	if err != nil {
		return nil, err
	}
	defer stop()
	if profileDir != "" {
		// From here on this process is the load generator alone (the
		// adapters and the base were written above).
		end, err := startCPUProfile(filepath.Join(profileDir, "load.pprof"))
		if err != nil {
			return nil, err
		}
		defer end()
	}
	res := &serveBenchResult{Env: map[string]string{
		"cpu": cpuModel(), "cores": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version(), "base": base, "model": modelDesc,
		"server": fmt.Sprintf("ark task serve, %d thread(s), %d adapter slots, %d adapters of rank %d registered, %s weights", threads, slots, nAdapters, rank, weights),
		"load":   fmt.Sprintf("closed loop, %d requests per client, prompt %d bytes, %d output tokens, temperature 0, seed %d; each row the median of %d interleaved rounds", reqPC, promptBytes, outputTokens, seed, repeat),
	}}
	if rate > 0 {
		res.Env["load"] = fmt.Sprintf("Poisson arrivals at %g req/s, at most the row's concurrency in flight, %d requests per unit of concurrency, prompt %d bytes, %d output tokens, temperature 0, seed %d; each row the median of %d interleaved rounds", rate, reqPC, promptBytes, outputTokens, seed, repeat)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Env["loadavg"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	run := func(models []string, c int, rowSeed uint64) (serve.LoadResult, error) {
		return serve.RunLoad(ctx, serve.LoadConfig{URL: url, Models: models, Concurrency: c, Requests: reqPC * c,
			PromptBytes: promptBytes, OutputTokens: outputTokens, Seed: seed*1_000_003 + rowSeed, Rate: rate})
	}
	// Warm the server's buffers for every batch size first.
	if _, err := run(append([]string{"base"}, names[:min(len(names), 32)]...), 32, 99); err != nil {
		return nil, err
	}
	// Each row runs repeat times, the whole grid once per round, so a
	// neighbour's burst on a shared machine lands on one round of every
	// row rather than on all of one row (rows last a fraction of a second
	// at gpt-tiny's speed); a row reports its median round.
	runs := make([][]serve.LoadResult, len(counts)*len(conc))
	cpus := make([][]float64, len(counts)*len(conc))
	clientCPUs := make([][]float64, len(counts)*len(conc))
	batches := make([][]float64, len(counts)*len(conc))
	stepBatches := make([][]float64, len(counts)*len(conc))
	phases := make([][]rowPhases, len(counts)*len(conc))
	for round := range repeat {
		for i, a := range counts {
			models := []string{"base"}
			if a > 0 {
				models = names[:a]
			}
			for j, c := range conc {
				s0, t0, ph0, okd0 := decodeCounts(url)
				c0, ok0 := procThreadsCPU(pid)
				l0 := selfCPU()
				r, err := run(models, c, uint64(1000*a+c))
				if err != nil {
					return nil, err
				}
				l1 := selfCPU()
				c1, ok1 := procThreadsCPU(pid)
				s1, t1, ph1, okd1 := decodeCounts(url)
				k := i*len(conc) + j
				if okd0 && okd1 && s1 > s0 {
					batches[k] = append(batches[k], float64(t1-t0)/float64(s1-s0))
					if st := ph1.StepMs - ph0.StepMs; st > 0 {
						stepBatches[k] = append(stepBatches[k], (ph1.BatchRowMs-ph0.BatchRowMs)/st)
					}
				}
				runs[k] = append(runs[k], r)
				if tok := r.OutputThroughput * r.DurationSec; ok0 && ok1 && tok > 0 {
					cpus[k] = append(cpus[k], float64((c1-c0).Nanoseconds())/1e3/tok)
				}
				if tok := r.OutputThroughput * r.DurationSec; l0 > 0 && tok > 0 {
					clientCPUs[k] = append(clientCPUs[k], float64((l1-l0).Nanoseconds())/1e3/tok)
				}
				fmt.Fprintf(log, "round %d, adapters %d concurrency %d: %.0f output tok/s, ttft p50 %.1f ms, failed %d\n", round+1, a, c, r.OutputThroughput, r.TTFTMsP50, r.Failed)
				if p, ok := phasesOf(ph0, ph1); okd0 && okd1 && ok {
					phases[k] = append(phases[k], p)
					fmt.Fprintf(log, "  %s\n", p)
				}
			}
		}
	}
	for i, a := range counts {
		for j := range conc {
			k := i*len(conc) + j
			res.Rows = append(res.Rows, serveBenchRow{Adapters: a, LoadResult: medianRun(runs[k]), ServerCPUUsPerToken: median(cpus[k]), ClientCPUUsPerToken: median(clientCPUs[k]), MeanBatch: median(batches[k]), StepTimeBatch: median(stepBatches[k]), Phases: medianPhases(phases[k])})
		}
	}
	if rules {
		if res.Rules, err = measureRules(ctx, url, func(seed uint64) (serve.LoadResult, error) {
			return serve.RunLoad(ctx, serve.LoadConfig{URL: url, Models: []string{"base"}, Concurrency: 1, Requests: rulesRequests,
				PromptBytes: promptBytes, OutputTokens: outputTokens, Seed: seed})
		}); err != nil {
			return nil, err
		}
		d := res.Rules.InputTTFTMsP99Delta
		res.RulesOverheadMsP99 = &d
	}
	if cold {
		// The last concurrency's median TTFT over 2x slots adapters
		// against slots/2.
		c := conc[len(conc)-1]
		if res.Warm, err = run(names[:slots/2], c, 7); err != nil {
			return nil, err
		}
		if res.Cold, err = run(names[:2*slots], c, 8); err != nil {
			return nil, err
		}
		if res.Warm.TTFTMsP50 > 0 {
			res.ColdAdapterTTFTRatio = res.Cold.TTFTMsP50 / res.Warm.TTFTMsP50
		}
	}
	return res, nil
}

// shapeWords is cfg in a few words.
func shapeWords(c train.Config) string {
	return fmt.Sprintf("%d layers x %d wide, %d heads, context %d, vocab %d", c.Layers, c.Width, c.Heads, c.Context, c.Vocab)
}

// benchModel is the seeded base's shape and name: --model's preset
// (gpt-tiny's without one) with --model-shape's fields over it.
func benchModel(model, shape string) (train.Config, string, error) {
	name := cmp.Or(model, "gpt-tiny")
	cfg, err := train.Preset(name)
	if err != nil {
		return train.Config{}, "", usageError{fmt.Errorf("--model: %w", err)}
	}
	if shape == "" {
		return cfg, name, nil
	}
	if cfg, err = parseModelShape(shape, cfg); err != nil {
		return train.Config{}, "", usageError{err}
	}
	return cfg, servedName(cfg), nil
}

// medianRun is the run of median output throughput (the lower middle of
// an even count), with the failures of every run.
func medianRun(rs []serve.LoadResult) serve.LoadResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b serve.LoadResult) int { return cmp.Compare(a.OutputThroughput, b.OutputThroughput) })
	m := s[(len(s)-1)/2]
	m.Failed = 0
	for _, r := range rs {
		m.Failed += r.Failed
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
	}
	return m
}

// median is the lower middle of xs, 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// writeBenchBase writes a base of shape cfg, named model in its
// checkpoint, into dir's store (job base): one training step from the
// seeded initialisation, so it is a real checkpoint of that shape.
func writeBenchBase(ctx context.Context, dir, model string, cfg train.Config) (string, error) {
	store, err := filestore.Open(dir)
	if err != nil {
		return "", err
	}
	d := cpu.New(1)
	defer d.Close()
	m, err := train.NewModel(d, cfg)
	if err != nil {
		return "", err
	}
	text := []byte(strings.Repeat("the king my lord of a sweet love in thy heart and night day. ", 200))
	tr, err := train.New(ctx, m, nil, train.Options{ModelName: model, Data: train.NewDataset(text, 0.1), Steps: 1, Batch: 1, LR: 1e-3, Seed: 1, Store: store, Job: "base"})
	if err != nil {
		return "", err
	}
	if _, err := tr.Run(ctx); err != nil {
		return "", err
	}
	return "file://" + dir + "/base", nil
}

// writeBenchAdapters writes n random adapters of base into dir's store
// (jobs ad-000...), as a trained adapter would be: B small, not zero.
func writeBenchAdapters(ctx context.Context, dir, base string, n, rank int) ([]string, error) {
	d := cpu.New(1)
	defer d.Close()
	m, _, err := train.LoadModel(ctx, d, base, nil)
	if err != nil {
		return nil, fmt.Errorf("--base: %w", err)
	}
	sum, err := m.ParamsSHA256()
	if err != nil {
		return nil, err
	}
	store, err := filestore.Open(dir)
	if err != nil {
		return nil, err
	}
	lc := train.LoRAConfig{Rank: rank}.WithDefaults()
	if err := lc.Validate(m.Cfg); err != nil {
		return nil, usageError{fmt.Errorf("--rank: %w", err)}
	}
	names := make([]string, n)
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), 3))
		w := &train.AdapterWeights{Cfg: lc, Model: m.Cfg, Base: base, BaseSHA256: sum, Params: make([]float32, lc.NumParams(m.Cfg))}
		for j := range w.Params {
			w.Params[j] = 0.02 * float32(rng.NormFloat64())
		}
		names[i] = fmt.Sprintf("ad-%03d", i)
		if err := train.SaveAdapter(ctx, store, names[i], 1, w, nil); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// startBenchServer runs `ark task serve` as its own process with every
// adapter, and waits until all of them are in host memory.
func startBenchServer(ctx context.Context, log io.Writer, dir, base string, names []string, slots, threads, rank int, profile, weights string) (string, int, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	args := []string{"task", "serve", "--base", base, "--served-model-name", "base", "--listen", addr,
		"--threads", strconv.Itoa(threads), "--adapter-slots", strconv.Itoa(slots), "--max-lora-rank", strconv.Itoa(rank),
		"--host-adapters", strconv.Itoa(len(names)), "--max-queue", "1024", "--max-batch", "32", "--weights", weights}
	for _, n := range names {
		args = append(args, "--adapter", n+"=file://"+dir+"/"+n)
	}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	srv := exec.Command(self, args...)
	srv.Stdout, srv.Stderr = io.Discard, log
	if err := srv.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list struct {
			Data []serve.AdapterInfo `json:"data"`
		}
		ready := false
		if resp, err := http.Get(url + "/v1/adapters"); err == nil {
			if json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Data) == len(names) {
				ready = true
				for _, a := range list.Data {
					if a.Tier == serve.TierFailed {
						resp.Body.Close()
						stop()
						return "", 0, nil, fmt.Errorf("adapter %s: %s", a.Name, a.Error)
					}
					ready = ready && a.Tier != serve.TierLoading && a.Tier != serve.TierStore
				}
			}
			resp.Body.Close()
		}
		if ready {
			return url, srv.Process.Pid, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", 0, nil, fmt.Errorf("the server at %s did not load its adapters within 60s", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func writeServeBench(w io.Writer, r *serveBenchResult, slots int) {
	fmt.Fprintln(w, "## ark bench serve: one base, N LoRA adapters, continuous batching")
	fmt.Fprintln(w)
	for _, k := range []string{"cpu", "cores", "go", "loadavg", "base", "model", "server", "load"} {
		if k == "model" && r.Env[k] == "" {
			continue // --base: the checkpoint's own
		}
		fmt.Fprintf(w, "- %s: %s\n", k, r.Env[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| adapters | concurrency | req/s | output tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | server CPU us/token | client CPU us/token | mean batch | step-time batch | failed |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	tput, cpu := map[[2]int]float64{}, map[[2]int]float64{}
	failed := 0
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %d | %d | %.2f | %.0f | %.1f | %.1f | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %d |\n", row.Adapters, row.Concurrency, row.RequestThroughput,
			row.OutputThroughput, row.TTFTMsP50, row.TTFTMsP99, row.TPOTMsP50, row.TPOTMsP99, row.ServerCPUUsPerToken, row.ClientCPUUsPerToken, row.MeanBatch, row.StepTimeBatch, row.Failed)
		tput[[2]int{row.Adapters, row.Concurrency}] = row.OutputThroughput
		cpu[[2]int{row.Adapters, row.Concurrency}] = row.ServerCPUUsPerToken
		failed += row.Failed
	}
	fmt.Fprintln(w)
	if a, b := tput[[2]int{0, 32}], tput[[2]int{0, 1}]; a > 0 && b > 0 {
		fmt.Fprintf(w, "- batching: output throughput at concurrency 32 is %.1fx concurrency 1, base only (target >= 6x)", a/b)
		if ca, cb := cpu[[2]int{0, 32}], cpu[[2]int{0, 1}]; ca > 0 && cb > 0 {
			fmt.Fprintf(w, "; a token costs the server %.1fx less CPU", cb/ca)
		}
		fmt.Fprintln(w)
	}
	if a, b := tput[[2]int{100, 32}], tput[[2]int{0, 32}]; a > 0 && b > 0 {
		fmt.Fprintf(w, "- 1+N: 100 adapters mixed uniformly reach %.2fx the base-only output throughput at concurrency 32 (target >= 0.85x)", a/b)
		if ca, cb := cpu[[2]int{100, 32}], cpu[[2]int{0, 32}]; ca > 0 && cb > 0 {
			fmt.Fprintf(w, "; %.2fx by the server's CPU per token", cb/ca)
		}
		fmt.Fprintln(w)
	}
	if r.Warm.Requests > 0 { // --cold=false leaves it unmeasured
		fmt.Fprintf(w, "- cold adapters: median TTFT with %d adapters in use over %d slots is %.2fx the median with %d (all in slots; target <= 2x)\n",
			2*slots, slots, r.ColdAdapterTTFTRatio, slots/2)
	}
	fmt.Fprintf(w, "- failed requests: %d (target 0)\n", failed+r.Cold.Failed+r.Warm.Failed)
	if ro := r.Rules; ro != nil {
		fmt.Fprintf(w, "- rules overhead, none matching, concurrency 1, %d requests a run, medians of %d alternated runs: %d input keyword rules add %+.2f ms to TTFT p50 (%+.2f ms p99); %d output regex rules add %+.2f ms to TTFT p50 (the text a match could span is held back) and %+.3f ms to TPOT p50\n",
			rulesRequests, rulesRounds, ro.InputRules, ro.InputTTFTMsP50Delta, ro.InputTTFTMsP99Delta, ro.OutputRules, ro.OutputTTFTMsP50Delta, ro.OutputTPOTMsP50Delta)
	}
}
