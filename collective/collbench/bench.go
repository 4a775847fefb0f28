package collbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ark-sched/ark/collective"
)

// ErrConfig is wrapped by errors in a Config (bad flags: exit code 2).
var ErrConfig = errors.New("invalid benchmark configuration")

// Config is one benchmark invocation.
type Config struct {
	Ranks      []int    // world sizes, e.g. 2,4
	Transports []string // tcp, shm
	MinBytes   int      // first size (default 8)
	MaxBytes   int      // last size (default 64 MiB); sizes double from MinBytes
	PerSize    time.Duration
	TuneMax    int // tuning pass up to this size (default 1 MiB; <0 none)
	Bucket     int // overlap bucket (default 4 MiB, at most MaxBytes)
	Channels   int
	Chunk      int
	Algo       string
	Timeout    time.Duration
	// InProcess runs ranks as goroutines of this process instead of
	// processes started by Spawn.
	InProcess bool
	// Spawn returns a command that runs Worker in a new process, with env
	// appended to its environment (e.g. the ark binary with
	// "bench allreduce --worker"). Required unless InProcess.
	Spawn func(env []string) *exec.Cmd
	// Log, if set, receives progress lines.
	Log io.Writer
}

// Result is what the benchmark prints (Markdown) or encodes (--json).
type Result struct {
	Env               Env                `json:"env"`
	Mode              string             `json:"mode"`
	Rows              []Row              `json:"rows"`
	P2P               map[string]float64 `json:"p2p_gbps"`
	P2PBidir          map[string]float64 `json:"p2p_bidir_gbps"`
	SmallLatencyUS    float64            `json:"small_latency_us"` // 8-byte all-reduce, 2 ranks, interleaved with the RTT
	LatencyTransport  string             `json:"small_latency_transport"`
	SmallLatencyShmUS float64            `json:"small_latency_shm_us,omitempty"`
	TCPRTTus          float64            `json:"tcp_rtt_us"`
	LatencyOverRTT    float64            `json:"latency_over_rtt"`
	OverlapEfficiency float64            `json:"overlap_efficiency"`
	OverlapCPU        float64            `json:"overlap_efficiency_cpu"`
	Overlap           *Overlap           `json:"overlap,omitempty"`
	Tuning            []TuningRun        `json:"tuning,omitempty"`
	Runs              []RunSummary       `json:"runs"`
}

// TuningRun is one (ranks, transport) tuning pass.
type TuningRun struct {
	Ranks     int      `json:"ranks"`
	Transport string   `json:"transport"`
	Crossover int      `json:"crossover_bytes"` // first size where the ring wins for good; -1: never
	Sizes     []Tuning `json:"sizes"`
}

// RunSummary is the headline of one (ranks, transport) run.
type RunSummary struct {
	Ranks      int     `json:"ranks"`
	Transport  string  `json:"transport"`
	MaxBytes   int     `json:"max_bytes"`
	BusBW      float64 `json:"busbw_gbps"`
	P2P        float64 `json:"p2p_gbps"`
	Fraction   float64 `json:"busbw_frac_p2p"`
	P2PBidir   float64 `json:"p2p_bidir_gbps"`
	BidirFrac  float64 `json:"busbw_frac_p2p_bidir"`
	WallSecond float64 `json:"wall_s"`
}

// Env describes where the benchmark ran.
type Env struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GPU        string `json:"gpu"`
	Go         string `json:"go"`
	Commit     string `json:"commit"`
	Channels   int    `json:"channels"`
	ChunkBytes int    `json:"chunk_bytes"`
}

func (c *Config) defaults() error {
	if len(c.Ranks) == 0 {
		c.Ranks = []int{2, 4}
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{"tcp", "shm"}
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 8
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.PerSize <= 0 {
		c.PerSize = 150 * time.Millisecond
	}
	if c.TuneMax == 0 {
		c.TuneMax = 1 << 20
	}
	if c.Bucket <= 0 {
		c.Bucket = min(4<<20, c.MaxBytes)
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Channels <= 0 {
		c.Channels = collective.DefaultChannels
	}
	if c.Chunk <= 0 {
		c.Chunk = collective.DefaultChunkBytes
	}
	for _, r := range c.Ranks {
		if r < 2 || r > 64 {
			return fmt.Errorf("ranks %d: want 2..64: %w", r, ErrConfig)
		}
	}
	for _, t := range c.Transports {
		if t != "tcp" && t != "shm" {
			return fmt.Errorf("transport %q: want tcp or shm: %w", t, ErrConfig)
		}
	}
	if c.MinBytes > c.MaxBytes {
		return fmt.Errorf("min bytes %d > max bytes %d: %w", c.MinBytes, c.MaxBytes, ErrConfig)
	}
	if !c.InProcess && c.Spawn == nil {
		return fmt.Errorf("no way to start rank processes (Spawn) and not in-process: %w", ErrConfig)
	}
	return nil
}

// Sizes are MinBytes, doubling, up to MaxBytes (float32 elements: a
// multiple of 4 bytes).
func (c *Config) sizes() []int {
	var out []int
	for s := c.MinBytes; s <= c.MaxBytes; s *= 2 {
		out = append(out, max(s/4*4, 4))
	}
	return out
}

// Run runs every (ranks, transport) combination and assembles the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Env: env(cfg), P2P: map[string]float64{}, P2PBidir: map[string]float64{}}
	res.Mode = "ranks are separate processes on this machine, over loopback TCP and /dev/shm"
	if cfg.InProcess {
		res.Mode = "ranks are goroutines of one process, over real loopback TCP sockets and /dev/shm rings"
	}
	ranks := append([]int(nil), cfg.Ranks...)
	// Two ranks first: that run also measures the link (p2p), the RTT and overlap.
	for i, r := range ranks {
		if r == 2 && i > 0 {
			ranks[0], ranks[i] = ranks[i], ranks[0]
		}
	}
	if ranks[0] != 2 {
		ranks = append([]int{2}, ranks...) // the baselines need a 2-rank run
	}
	rttDone, overlapDone := false, false
	for _, n := range ranks {
		for _, tr := range cfg.Transports {
			s := Spec{
				Ranks: n, Transport: tr, Sizes: cfg.sizes(), PerSize: cfg.PerSize,
				Channels: cfg.Channels, Chunk: cfg.Chunk, Algo: cfg.Algo, Timeout: cfg.Timeout,
				Bucket: cfg.Bucket,
			}
			if n == 2 {
				s.P2P = true
				s.RTT = !rttDone
				s.Overlap = !overlapDone
				rttDone, overlapDone = true, true
			}
			if cfg.TuneMax > 0 {
				s.TuneMax = cfg.TuneMax
			}
			if cfg.Log != nil {
				fmt.Fprintf(cfg.Log, "run: %d ranks over %s\n", n, tr)
			}
			start := time.Now()
			rr, err := runOne(ctx, cfg, s)
			if err != nil {
				return nil, fmt.Errorf("%d ranks over %s: %w", n, tr, err)
			}
			wall := time.Since(start).Seconds()
			if n == 2 {
				res.P2P[tr], res.P2PBidir[tr] = rr.P2PGBps, rr.P2PBidirGBps
			}
			if rr.RTTus > 0 {
				res.TCPRTTus, res.SmallLatencyUS = rr.RTTus, rr.SmallUS
				res.LatencyTransport = tr
			}
			if rr.Overlap != nil {
				res.Overlap = rr.Overlap
				res.OverlapEfficiency = rr.Overlap.Efficiency
				res.OverlapCPU = rr.Overlap.CPUEff
			}
			if len(rr.Tuning) > 0 {
				res.Tuning = append(res.Tuning, TuningRun{Ranks: n, Transport: tr, Crossover: rr.Crossover, Sizes: rr.Tuning})
			}
			for i := range rr.Rows {
				row := &rr.Rows[i]
				row.P2P, row.P2PBidir = res.P2P[tr], res.P2PBidir[tr]
				if row.P2P > 0 {
					row.BusFrac = row.BusBW / row.P2P
				}
				if row.P2PBidir > 0 {
					row.BidirFrac = row.BusBW / row.P2PBidir
				}
				if n == 2 && row.Bytes == 8 && tr == "shm" {
					res.SmallLatencyShmUS = row.TimeUS
				}
			}
			if len(rr.Rows) > 0 {
				last := rr.Rows[len(rr.Rows)-1]
				if h := rr.Headline; h != nil {
					// Interleaved with the p2p streams: the fair comparison.
					last.TimeUS, last.AlgBW, last.BusBW = h.TimeUS, h.AlgBW, h.BusBW
					last.BusFrac, last.BidirFrac = h.BusBW/last.P2P, h.BusBW/last.P2PBidir
				}
				res.Runs = append(res.Runs, RunSummary{Ranks: n, Transport: tr, MaxBytes: last.Bytes,
					BusBW: last.BusBW, P2P: last.P2P, Fraction: last.BusFrac,
					P2PBidir: last.P2PBidir, BidirFrac: last.BidirFrac, WallSecond: wall})
			}
			if !contains(cfg.Ranks, n) {
				continue // the 2-rank run was only for the baselines
			}
			res.Rows = append(res.Rows, rr.Rows...)
		}
	}
	if res.TCPRTTus > 0 {
		res.LatencyOverRTT = res.SmallLatencyUS / res.TCPRTTus
	}
	return res, nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// runOne runs one spec on s.Ranks ranks and returns rank 0's result.
func runOne(ctx context.Context, cfg Config, s Spec) (*RankResult, error) {
	if cfg.InProcess {
		return runInProcess(ctx, cfg, s)
	}
	return runProcesses(ctx, cfg, s)
}

func runInProcess(ctx context.Context, cfg Config, s Spec) (*RankResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	results := make([]*RankResult, s.Ranks)
	errs := make([]error, s.Ranks)
	var wg sync.WaitGroup
	for r := range s.Ranks {
		o := options(s)
		o.Rank, o.WorldSize, o.MasterAddr = r, s.Ranks, ln.Addr().String()
		if r == 0 {
			o.Listener = ln
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := collective.New(ctx, o)
			if err != nil {
				errs[r] = err
				return
			}
			defer c.Close()
			var log io.Writer
			if r == 0 {
				log = cfg.Log
			}
			results[r], errs[r] = RunRank(ctx, c, s, log)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results[0], nil
}

// Environment variables of a worker process.
const (
	EnvSpec = "ARK_BENCH_ALLREDUCE_SPEC" // JSON Spec
	EnvOut  = "ARK_BENCH_ALLREDUCE_OUT"  // where rank 0 writes its JSON result
	// EnvPortFile is where rank 0, started with MASTER_PORT=0, writes the
	// port it listens on (then a newline) before the other ranks start.
	EnvPortFile = "ARK_BENCH_ALLREDUCE_PORT_FILE"
)

func runProcesses(ctx context.Context, cfg Config, s Spec) (*RankResult, error) {
	dir, err := os.MkdirTemp("", "ark-bench-allreduce-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out, portFile := filepath.Join(dir, "rank0.json"), filepath.Join(dir, "port")
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	cmds := make([]*exec.Cmd, 0, s.Ranks)
	logs := make([]*bytes.Buffer, s.Ranks)
	kill := func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	port := "0" // rank 0 listens on a free port and writes it to portFile
	for r := range s.Ranks {
		if r == 1 {
			p, err := waitPort(ctx, portFile, 30*time.Second)
			if err != nil {
				kill()
				return nil, fmt.Errorf("rank 0 did not start: %w: %s", err, strings.TrimSpace(logs[0].String()))
			}
			port = p
		}
		cmd := cfg.Spawn([]string{
			"RANK=" + strconv.Itoa(r), "WORLD_SIZE=" + strconv.Itoa(s.Ranks),
			"LOCAL_RANK=" + strconv.Itoa(r), "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port,
			EnvSpec + "=" + string(spec), EnvOut + "=" + out, EnvPortFile + "=" + portFile,
		})
		logs[r] = &bytes.Buffer{}
		cmd.Stderr = logs[r]
		if r == 0 && cfg.Log != nil {
			cmd.Stdout = cfg.Log
		} else {
			cmd.Stdout = logs[r]
		}
		if err := cmd.Start(); err != nil {
			kill()
			return nil, fmt.Errorf("start rank %d: %w", r, err)
		}
		cmds = append(cmds, cmd)
	}
	var errs []error
	for r, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("rank %d: %w: %s", r, err, strings.TrimSpace(logs[r].String())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("rank 0 result: %w", err)
	}
	var rr RankResult
	if err := json.Unmarshal(b, &rr); err != nil {
		return nil, fmt.Errorf("rank 0 result: %w", err)
	}
	return &rr, nil
}

func waitPort(ctx context.Context, path string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
			return strings.TrimSpace(string(b)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no rendezvous port after %v", limit)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// IsWorker reports whether this process was started as a benchmark rank.
func IsWorker() bool { return os.Getenv(EnvSpec) != "" }

// Worker is a rank process's whole job: join from the environment, run the
// spec, and (rank 0) write the result where the parent reads it.
func Worker(ctx context.Context, stdout io.Writer) error {
	var s Spec
	if err := json.Unmarshal([]byte(os.Getenv(EnvSpec)), &s); err != nil {
		return fmt.Errorf("%s: %w", EnvSpec, err)
	}
	o, err := options(s).FromEnv()
	if err != nil {
		return err
	}
	o.TransportName = s.Transport // the spec wins over ARK_COLL_TRANSPORT
	if o.Rank == 0 && os.Getenv("MASTER_PORT") == "0" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		o.Listener = ln
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		if err := os.WriteFile(os.Getenv(EnvPortFile), []byte(port+"\n"), 0o600); err != nil {
			ln.Close()
			return err
		}
	}
	c, err := collective.New(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	var log io.Writer
	if c.Rank() == 0 {
		log = stdout
	}
	rr, err := RunRank(ctx, c, s, log)
	if err != nil {
		return err
	}
	if c.Rank() != 0 {
		return nil
	}
	b, err := json.Marshal(rr)
	if err != nil {
		return err
	}
	return os.WriteFile(os.Getenv(EnvOut), b, 0o600)
}

func env(cfg Config) Env {
	e := Env{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		GPU: "none (all-reduce runs on host memory)", Commit: "unknown", Channels: cfg.Channels, ChunkBytes: cfg.Chunk}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.Index(l, ":"); i >= 0 {
					e.CPU = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out)) + " (git HEAD of the working directory)"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				e.Commit = s.Value[:7]
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				e.Commit += "+dirty"
			}
		}
	}
	return e
}
