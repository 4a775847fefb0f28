package raftbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ark-sched/ark/scheduler/api/client"
)

// Config is one benchmark run.
type Config struct {
	// Binary is the ark executable to start servers from.
	Binary string
	// Clients are the concurrency levels to measure.
	Clients []int
	// Duration is how long each level runs.
	Duration time.Duration
	// Failovers is how many leader kills to time (the median is reported).
	Failovers int
	// Baseline also measures servers with hashicorp/raft's own batching
	// defaults, in the same run.
	Baseline bool
	// ProfileDir, when set, receives CPU profiles of the three servers
	// and of the clients for each level (profile.go).
	ProfileDir string
	// Log receives progress lines.
	Log io.Writer
}

// Level is the result at one client count.
type Level struct {
	Clients       int     `json:"clients"`
	Submits       int     `json:"submits"`
	Errors        int     `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	SubmitsPerSec float64 `json:"submits_per_sec"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
	// CPU milliseconds each committed submission cost the leader, the
	// three servers together, and the clients (this process): on a
	// shared machine these hold where submits/s does not (cpu.go).
	LeaderCPUms  float64 `json:"leader_cpu_ms_per_submit"`
	ServersCPUms float64 `json:"servers_cpu_ms_per_submit"`
	ClientCPUms  float64 `json:"client_cpu_ms_per_submit"`
}

// Variant is the results of one server configuration.
type Variant struct {
	Name      string    `json:"name"`
	Levels    []Level   `json:"levels"`
	Failovers []float64 `json:"failovers_s,omitempty"`
}

// Result is a whole run. The top-level figures are those of the tuned
// (default) configuration.
type Result struct {
	Env           map[string]string  `json:"env"`
	SubmitsPerSec map[string]float64 `json:"submits_per_sec"`
	P50ms         float64            `json:"p50_ms"`
	P99ms         float64            `json:"p99_ms"`
	FailoverS     float64            `json:"failover_s"`
	Variants      []Variant          `json:"variants"`
}

const jobSpec = `{"name":"bench","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	res := &Result{Env: Env("3 ark server processes on loopback, raft-boltdb with fsync on every append"), SubmitsPerSec: map[string]float64{}}
	variants := []bool{false}
	if cfg.Baseline {
		variants = []bool{true, false}
	}
	for _, untuned := range variants {
		name := "ark (group commit: BatchApplyCh, MaxAppendEntries 512)"
		if untuned {
			name = "baseline (hashicorp/raft defaults: MaxAppendEntries 64, no BatchApplyCh)"
		}
		fmt.Fprintf(cfg.Log, "== %s\n", name)
		v, err := runVariant(ctx, cfg, untuned)
		if err != nil {
			return nil, err
		}
		v.Name = name
		res.Variants = append(res.Variants, *v)
		if !untuned {
			for _, l := range v.Levels {
				res.SubmitsPerSec[fmt.Sprint(l.Clients)] = round1(l.SubmitsPerSec)
				res.P50ms, res.P99ms = l.P50ms, l.P99ms // the largest level is last
			}
			res.FailoverS = median(v.Failovers)
		}
	}
	return res, nil
}

func runVariant(ctx context.Context, cfg Config, untuned bool) (*Variant, error) {
	c, err := startCluster(ctx, cfg.Binary, untuned, Options{})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	v := &Variant{}
	for _, n := range cfg.Clients {
		done := c.profileLevel(ctx, cfg.ProfileDir, n, cfg.Duration, cfg.Log)
		l, err := c.load(ctx, n, cfg.Duration)
		done()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "  %4d clients: %8.0f submits/s  p50 %.2f ms  p99 %.2f ms  (%d errors)  CPU ms/submit: leader %.3f, servers %.3f, clients %.3f\n",
			n, l.SubmitsPerSec, l.P50ms, l.P99ms, l.Errors, l.LeaderCPUms, l.ServersCPUms, l.ClientCPUms)
		if l.FirstError != "" {
			fmt.Fprintf(cfg.Log, "    first error: %s\n", l.FirstError)
		}
		v.Levels = append(v.Levels, *l)
	}
	for i := 0; i < cfg.Failovers; i++ {
		d, err := c.failover(ctx)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Log, "  failover %d: %.3f s\n", i+1, d.Seconds())
		v.Failovers = append(v.Failovers, round3(d.Seconds()))
	}
	return v, nil
}

type server struct {
	name, dir, http, raft string
	cmd                   *exec.Cmd
	done                  chan struct{}
}

type cluster struct {
	bin     string
	untuned bool
	opts    Options
	root    string
	servers []*server
	addrs   []string
	http    *http.Client
}

func startCluster(ctx context.Context, bin string, untuned bool, opts Options) (*cluster, error) {
	root, err := os.MkdirTemp("", "ark-bench-raft")
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, untuned: untuned, opts: opts, root: root, http: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute,
	}}}
	for i := 1; i <= 3; i++ {
		s := &server{name: fmt.Sprintf("s%d", i), dir: filepath.Join(root, fmt.Sprintf("s%d", i)), http: freeAddr(), raft: freeAddr()}
		c.servers = append(c.servers, s)
		c.addrs = append(c.addrs, s.http)
	}
	for _, s := range c.servers {
		if err := c.start(s); err != nil {
			c.stop()
			return nil, err
		}
	}
	if _, err := c.waitLeader(ctx, nil, 30*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) start(s *server) error {
	args := []string{"server", "--name", s.name, "--data-dir", s.dir, "--http", s.http, "--raft", s.raft,
		"--bootstrap-expect", "3", "--join", strings.Join(c.addrs, ","), "--log-level", "error", "--enable-debug",
		// The bench measures the commit path: the cap on a namespace's
		// unfinished jobs (5,000 by default) would turn every submission
		// past it into a 403.
		"--namespace-max-jobs", "0"}
	if c.untuned {
		args = append(args, "--raft-untuned")
	}
	if c.opts.RaftMultiplier > 0 {
		args = append(args, "--raft-multiplier", strconv.Itoa(c.opts.RaftMultiplier))
	}
	args = append(args, c.opts.ServerArgs...)
	logDir := c.root
	if c.opts.LogDir != "" {
		logDir = c.opts.LogDir
		args = append(args, "--log-level", "warn") // the later flag wins
	}
	cmd := exec.Command(c.bin, args...)
	logf, err := os.OpenFile(filepath.Join(logDir, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	logf.Close()
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	return nil
}

func (c *cluster) stop() {
	for _, s := range c.servers {
		if s.cmd != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, s := range c.servers {
		if s.cmd == nil {
			continue
		}
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(c.root)
}

func (c *cluster) client() *client.Client {
	cl, err := client.New(c.addrs...)
	if err != nil {
		panic(err) // addresses are ours
	}
	cl.SetHTTPClient(c.http)
	cl.AttemptTimeout = 2 * time.Second
	return cl
}

// waitLeader returns the server that says it leads, skipping dead ones.
func (c *cluster) waitLeader(ctx context.Context, skip *server, limit time.Duration) (*server, error) {
	deadline := time.Now().Add(limit)
	var last error // what the last server asked answered, for the error
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			if s == skip {
				continue
			}
			cl, _ := client.New(s.http)
			// Time enough for an answer from a loaded machine: the
			// process asking may be the one playing 10,000 agents (ark
			// bench cluster), where 500 ms went by without one for 30 s
			// while the leader was in place.
			rctx, cancel := context.WithTimeout(ctx, waitLeaderAsk)
			self, err := cl.ServerSelf(rctx)
			cancel()
			switch {
			case err != nil:
				last = fmt.Errorf("%s: %w", s.name, err)
			case self.Leader == self.Name:
				return s, nil
			default:
				last = fmt.Errorf("%s: leader %q", s.name, self.Leader)
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no leader elected in %s (last answer: %v)", limit, last)
}

// waitLeaderAsk bounds one server's answer to waitLeader.
const waitLeaderAsk = 3 * time.Second

// load runs n clients submitting jobs for d and reports what committed.
func (c *cluster) load(ctx context.Context, n int, d time.Duration) (*Level, error) {
	cl := c.client()
	// Warm the connection pool and the leader preference.
	if _, err := cl.SubmitJob(ctx, []byte(jobSpec)); err != nil {
		return nil, fmt.Errorf("warm-up submit: %w", err)
	}
	var (
		wg      sync.WaitGroup
		ok, bad atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		first   atomic.Pointer[string]
	)
	leaderPid := 0
	if l, err := c.waitLeader(ctx, nil, 5*time.Second); err == nil {
		leaderPid = l.cmd.Process.Pid
	}
	cpu0 := c.cpuSample(leaderPid)
	stop := time.Now().Add(d)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(stop) && ctx.Err() == nil {
				t0 := time.Now()
				_, err := cl.SubmitJob(ctx, []byte(jobSpec))
				if err != nil {
					bad.Add(1)
					msg := err.Error()
					first.CompareAndSwap(nil, &msg)
					continue
				}
				mine = append(mine, time.Since(t0))
				ok.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := c.cpuSample(leaderPid)
	sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
	firstErr := ""
	if p := first.Load(); p != nil {
		firstErr = *p
	}
	return &Level{
		FirstError: firstErr,
		Clients:    n, Submits: int(ok.Load()), Errors: int(bad.Load()),
		SubmitsPerSec: round1(float64(ok.Load()) / elapsed.Seconds()),
		P50ms:         ms(pct(lat, 0.50)), P99ms: ms(pct(lat, 0.99)),
		LeaderCPUms:  cpuPerSubmit(cpu0, cpu1, cpu0.leader, cpu1.leader, ok.Load()),
		ServersCPUms: cpuPerSubmit(cpu0, cpu1, cpu0.servers, cpu1.servers, ok.Load()),
		ClientCPUms:  cpuPerSubmit(cpu0, cpu1, cpu0.clients, cpu1.clients, ok.Load()),
	}, nil
}

// failover SIGKILLs the leader and times the first write another server
// accepts, then restarts the killed server and waits until it has caught up.
func (c *cluster) failover(ctx context.Context) (time.Duration, error) {
	leader, err := c.waitLeader(ctx, nil, 30*time.Second)
	if err != nil {
		return 0, err
	}
	cl := c.client()
	cl.AttemptTimeout = 500 * time.Millisecond
	_ = leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.done
	t0 := time.Now()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cl.SubmitJob(rctx, []byte(jobSpec))
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Since(t0) > 30*time.Second {
			return 0, fmt.Errorf("no write accepted within 30s of killing the leader: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := time.Since(t0)
	if err := c.start(leader); err != nil {
		return 0, err
	}
	// Wait for the restarted server to rejoin before the next kill.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cl, _ := client.New(leader.http)
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		self, err := cl.ServerSelf(rctx)
		cancel()
		if err == nil && self.Leader != "" {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("restarted %s did not rejoin within 30s", leader.name)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func pct(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(float64(len(v))*p))]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return round3(float64(d.Microseconds()) / 1000) }
func round1(f float64) float64   { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64   { return float64(int64(f*1000+0.5)) / 1000 }

// Env describes the machine a benchmark ran on (host, CPU, cores, Go,
// commit) and, in words, the cluster it measured.
func Env(cluster string) map[string]string {
	host, _ := os.Hostname()
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					cpu = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	commit := "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return map[string]string{"host": host, "cpu": cpu, "cores": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version(), "commit": commit,
		"cluster": cluster}
}

// WriteMarkdown prints the result as Markdown tables.
func (r *Result) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "# ark bench raft\n\n")
	fmt.Fprintf(w, "| env | |\n| --- | --- |\n")
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %s |\n", k, r.Env[k])
	}
	for _, v := range r.Variants {
		fmt.Fprintf(w, "\n## %s\n\n| clients | submits/s | p50 ms | p99 ms | committed | errors | leader CPU ms/submit | 3 servers CPU ms/submit | clients CPU ms/submit |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n", v.Name)
		for _, l := range v.Levels {
			fmt.Fprintf(w, "| %d | %.0f | %.2f | %.2f | %d | %d | %.3f | %.3f | %.3f |\n", l.Clients, l.SubmitsPerSec, l.P50ms, l.P99ms, l.Submits, l.Errors, l.LeaderCPUms, l.ServersCPUms, l.ClientCPUms)
		}
		if len(v.Failovers) > 0 {
			fmt.Fprintf(w, "\nSIGKILL of the leader to the first write accepted by the new leader: median %.3f s over %d kills %v\n", median(v.Failovers), len(v.Failovers), v.Failovers)
		}
	}
	return nil
}

// WriteJSON prints the result as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
