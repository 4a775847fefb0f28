package clustersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/ark-sched/ark/bench/placementsim"
	"github.com/ark-sched/ark/bench/raftbench"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// Config is one run.
type Config struct {
	// Binary is the ark executable the servers run.
	Binary string
	// Nodes is how many agents to play.
	Nodes int
	// Jobs bounds the submissions (0: none); Duration bounds the job
	// stream. The stream also ends once the cluster is full.
	Jobs     int
	Duration time.Duration
	// TaskDuration is the mean simulated run time of a task (±50%).
	TaskDuration time.Duration
	// Clients submit jobs concurrently: in a closed loop (Rate 0) each
	// sends its next job when the last is answered; with Rate, they bound
	// the submissions in flight.
	Clients int
	// Rate, when positive, makes the stream open-loop: Poisson arrivals
	// at Rate a second (seeded), whatever the servers' speed.
	Rate float64
	// KillLeader SIGKILLs the leader once, when the stream has filled half
	// the cluster (or run half its bound).
	KillLeader bool
	// Pods is the openb task list the shapes come from (default: the
	// default list in bench/data/openb).
	Pods string
	Seed uint64
	// ProfileDir, when set, receives the leader's CPU profile (taken for
	// ProfileSeconds from the stream's start) and its heap at the end.
	ProfileDir     string
	ProfileSeconds int
	// RaftMultiplier is the servers' --raft-multiplier (0: the server's
	// default); ServerLogs, when set, keeps their logs (warn level) there.
	RaftMultiplier int
	ServerLogs     string
	// ServerArgs are added to every server's command line.
	ServerArgs []string
	// Log receives progress lines.
	Log io.Writer
}

// Result is what `ark bench cluster` reports.
type Result struct {
	Nodes            int     `json:"nodes"`
	HeartbeatsPerSec float64 `json:"heartbeats_per_sec"`
	// HeartbeatTTLS is the longest TTL the servers told a node: it grows
	// with the cluster (--max-heartbeats-per-second).
	HeartbeatTTLS float64 `json:"heartbeat_ttl_s"`
	SubmitsPerSec float64 `json:"submits_per_sec"`
	// OfferedPerSec is the open-loop stream's arrival rate (0: closed
	// loop). ArrivalLagP99ms is how long arrivals waited for a submitter
	// or for room before being sent: above a few ms, the servers did not
	// keep up with the offer (the latencies count from arrival).
	OfferedPerSec        float64 `json:"offered_per_sec"`
	ArrivalLagP99ms      float64 `json:"arrival_lag_ms_p99"`
	PlacementsPerSec     float64 `json:"placements_per_sec"`
	SubmitToRunningP50ms float64 `json:"submit_to_running_ms_p50"`
	SubmitToRunningP99ms float64 `json:"submit_to_running_ms_p99"`
	// SubmitToSeen is the servers' part of it: submission to the last
	// rank's allocation reaching its agent's long-poll (jobs with room
	// whose ranks all did). The rest is the agents' running reports.
	// Steady is submit-to-running for the jobs submitted until
	// killGuard before the leader was killed (all when it was not): what
	// the cluster gives without a failover.
	SteadyP50ms               float64 `json:"submit_to_running_ms_p50_before_kill"`
	SteadyP99ms               float64 `json:"submit_to_running_ms_p99_before_kill"`
	SubmitToSeenP50ms         float64 `json:"submit_to_seen_ms_p50"`
	SubmitToSeenP99ms         float64 `json:"submit_to_seen_ms_p99"`
	LeaderCPUCores            float64 `json:"leader_cpu_cores"`
	LeaderRSSMiB              float64 `json:"leader_rss_mib"`
	FollowerRSSMiB            float64 `json:"follower_rss_mib"`
	RaftLogBytesPerJob        float64 `json:"raft_log_bytes_per_job"`
	FailoverS                 float64 `json:"failover_s"`
	RaftMultiplier            int     `json:"raft_multiplier"`
	NodesMarkedDownByFailover int     `json:"nodes_marked_down_by_failover"`
	// LeaderChanges is the most leader changes a server that ran
	// throughout saw (ark_raft_leader_changes_total); UnforcedElections
	// the elections among them that the bench's kill did not cause: a
	// leader that stepped down by itself (a stall past its lease).
	LeaderChanges     int `json:"leader_changes"`
	UnforcedElections int `json:"unforced_elections"`

	// Context for the figures above.
	NodesMarkedDownByLoad int     `json:"nodes_marked_down_by_load"`
	NodesRegistered       int     `json:"nodes_registered"`
	RegisterS             float64 `json:"register_s"`
	StreamS               float64 `json:"stream_s"`
	Jobs                  int     `json:"jobs"`
	SubmitErrors          int     `json:"submit_errors"`
	Placements            int     `json:"placements"`
	TasksSucceeded        int64   `json:"tasks_succeeded"`
	PendingJobs           int     `json:"pending_jobs"`
	RoomJobs              int     `json:"room_jobs"`
	RoomJobsNotRunning    int     `json:"room_jobs_not_running"`
	ClusterFull           bool    `json:"cluster_full"`
	GPUFill               float64 `json:"gpu_fill"`
	HeartbeatErrors       int64   `json:"heartbeat_errors"`
	// LongPollAnswersPerSec is how many of the agents' allocation
	// long-polls were answered a second: an agent's poll should answer
	// when its own node's allocations change, or after its 30 s wait.
	LongPollAnswersPerSec float64 `json:"long_poll_answers_per_sec"`
	// HeartbeatErrorKinds counts them by kind: "HTTP 5xx", "timeout", ...
	HeartbeatErrorKinds map[string]int64 `json:"heartbeat_error_kinds,omitempty"`
	// ProfileErrors says which of --profile-dir's files were not written
	// and why (the progress log that also says so is off with --json).
	ProfileErrors      []string          `json:"profile_errors,omitempty"`
	Reregistrations    int64             `json:"reregistrations"`
	NotFoundHeartbeats int64             `json:"not_found_heartbeats"`
	NotFoundLongPolls  int64             `json:"not_found_long_polls"`
	RaftEntriesPerJob  float64           `json:"raft_entries_per_job"`
	Mix                map[string]int    `json:"mix"`
	Env                map[string]string `json:"env"`
}

// killGuard is how long before the leader's kill a submission must be to
// count in the steady-state figures: longer than a submission takes to
// run outside a failover.
const killGuard = 10 * time.Second

// roomFrac is the fill below which a job counts as submitted "while the
// cluster has room" for the latency figures: above it, fragmentation makes
// waiting the cluster's shape, not the control plane's speed.
const roomFrac = 0.9

// Run runs the simulation.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Nodes <= 0 || cfg.Clients <= 0 || cfg.TaskDuration <= 0 {
		return nil, errors.New("clustersim: nodes, clients and task duration must be positive")
	}
	if !ValidRate(cfg.Rate) {
		return nil, fmt.Errorf("clustersim: rate must be 0 (closed loop) or a positive number of submissions a second, got %v", cfg.Rate)
	}
	if cfg.Jobs <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("clustersim: give a bound: jobs or duration")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	// The stream's submitters, its failover and its ticker all log.
	cfg.Log = zapcore.Lock(zapcore.AddSync(cfg.Log))
	if cfg.Pods == "" {
		cfg.Pods = filepath.Join(placementsim.DataDir(), "openb_pod_list_default.csv.gz")
	}
	pods, err := placementsim.LoadPods(cfg.Pods)
	if err != nil {
		return nil, fmt.Errorf("job shapes: %w", err)
	}
	mix, err := NewMix(pods, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("job shapes from %s: %w", cfg.Pods, err)
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}

	if lim, err := raiseOpenFiles(openFilesFor(cfg.Nodes)); err != nil {
		fmt.Fprintf(cfg.Log, "warning: %v: agents' connections may fail with \"too many open files\"\n", err)
	} else if lim > 0 {
		fmt.Fprintf(cfg.Log, "open files: up to %d\n", lim)
	}
	fmt.Fprintf(cfg.Log, "starting 3 servers\n")
	if cfg.ServerLogs != "" {
		if err := os.MkdirAll(cfg.ServerLogs, 0o755); err != nil {
			return nil, err
		}
	}
	c, err := raftbench.StartCluster(ctx, cfg.Binary, raftbench.Options{RaftMultiplier: cfg.RaftMultiplier, LogDir: cfg.ServerLogs, ServerArgs: cfg.ServerArgs})
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	leader, err := c.Leader(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	mon := newMonitor(c, leader)
	mctx, stopMon := context.WithCancel(ctx)
	defer stopMon()
	go mon.run(mctx)

	res := &Result{Nodes: cfg.Nodes, RaftMultiplier: max(cfg.RaftMultiplier, 1), Mix: mix.Classes(), Env: raftbench.Env("3 ark server processes on loopback (fsync on), agents and job stream in one more process")}
	tr := newTracker(int64(cfg.Nodes) * GPUsPerNode * 1000) // set again once the agents are up
	fl := newFleet(c.Addrs(), cfg.TaskDuration, cfg.Seed, fleetHooks{seen: tr.seen, running: tr.running, ended: tr.ended})
	actx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()

	fmt.Fprintf(cfg.Log, "registering %d agents\n", cfg.Nodes)
	t0 := time.Now()
	ready, waitAgents := fl.start(actx, cfg.Nodes, 128)
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.RegisterS = round3(time.Since(t0).Seconds())
	res.NodesRegistered = int(fl.registered.Load())
	if e, ok := fl.firstRegErr.Load().(string); ok {
		fmt.Fprintf(cfg.Log, "  %d registrations refused; the first: %s\n", fl.regErrs.Load(), e)
	}
	// A few refused (a node the load marked down while it registered)
	// leave the run meaningful; most refused do not.
	if res.NodesRegistered < cfg.Nodes*9/10 {
		return nil, fmt.Errorf("only %d of %d agents registered", res.NodesRegistered, cfg.Nodes)
	}
	fmt.Fprintf(cfg.Log, "  %d agents registered in %.1f s\n", res.NodesRegistered, res.RegisterS)
	tr.capacity = int64(res.NodesRegistered) * GPUsPerNode * 1000

	// Submissions time out as the CLI's do; listing 10,000 nodes from a
	// busy server takes longer than raftbench's 2 s per attempt.
	cl := c.Client()
	cl.AttemptTimeout = client.DefaultAttemptTimeout
	slow := c.Client()
	slow.AttemptTimeout = time.Minute
	startIdx := lastIndex(ctx, slow)
	pctx, stopProfiles := context.WithCancel(ctx)
	profiled := make(chan struct{})
	var perrs profileErrors
	go func() { defer close(profiled); profileLeader(pctx, cfg, c, &perrs) }()
	st := runStream(ctx, cfg, c, cl, slow, mix, tr, fl, mon)
	stopProfiles()
	<-profiled
	res.StreamS = round3(st.elapsed.Seconds())

	// Let the jobs submitted with room reach running before counting.
	settle(ctx, tr, fl, cfg.Log)
	res.PendingJobs = pendingReasons(ctx, slow, cfg.Log)
	if cfg.ProfileDir != "" {
		if l, err := c.Leader(ctx, 10*time.Second); err != nil {
			perrs.add(fmt.Errorf("leader-heap.pprof, leader-metrics.txt: no leader: %w", err))
		} else {
			perrs.add(saveProfile(ctx, l.HTTP(), "heap", filepath.Join(cfg.ProfileDir, "leader-heap.pprof"), cfg.Log))
			perrs.add(raftbench.SaveURL(ctx, "http://"+l.HTTP()+"/metrics", filepath.Join(cfg.ProfileDir, "leader-metrics.txt"), cfg.Log))
		}
		res.ProfileErrors = perrs.list()
	}
	end := time.Now()
	hb, polls := mon.stopCounting(fl)
	res.HeartbeatsPerSec = round1(float64(hb) / end.Sub(st.start).Seconds())
	res.LongPollAnswersPerSec = round1(float64(polls) / end.Sub(st.start).Seconds())
	res.HeartbeatTTLS = time.Duration(fl.maxTTL.Load()).Seconds()
	res.HeartbeatErrors = fl.heartbeatErrs.Load()
	fl.hbErrMu.Lock()
	res.HeartbeatErrorKinds = maps.Clone(fl.hbErrKinds)
	fl.hbErrMu.Unlock()
	if e, ok := fl.lastHBErr.Load().(string); ok {
		fmt.Fprintf(cfg.Log, "  last heartbeat error: %s\n", e)
	}
	res.Reregistrations = fl.reregistered.Load()
	res.NotFoundHeartbeats, res.NotFoundLongPolls = fl.notFoundHB.Load(), fl.notFoundSync.Load()
	res.Jobs, res.SubmitErrors = int(st.ok), int(st.bad)
	res.SubmitsPerSec = round1(float64(st.ok) / st.elapsed.Seconds())
	res.OfferedPerSec = cfg.Rate
	res.ArrivalLagP99ms = round3(Percentile(st.lagMs, 0.99))
	res.Placements, res.TasksSucceeded = int(fl.placements.Load()), fl.succeeded.Load()
	if last := time.Unix(0, fl.lastPlacement.Load()); last.After(st.start) {
		res.PlacementsPerSec = round1(float64(res.Placements) / last.Sub(st.start).Seconds())
	}
	lat, notRunning := tr.latencies(end)
	res.RoomJobs, res.RoomJobsNotRunning = len(lat), notRunning
	res.SubmitToRunningP50ms = round3(Percentile(lat, 0.50))
	res.SubmitToRunningP99ms = round3(Percentile(lat, 0.99))
	// The steady state: jobs submitted until killGuard before the kill
	// (every job when there was none), whose runs the failover could not
	// delay.
	cut := time.Time{}
	if !st.killedAt.IsZero() {
		cut = st.killedAt.Add(-killGuard)
	}
	steady, _ := tr.latenciesBefore(cut, end)
	res.SteadyP50ms, res.SteadyP99ms = round3(Percentile(steady, 0.50)), round3(Percentile(steady, 0.99))
	seen := tr.seenLatencies()
	res.SubmitToSeenP50ms, res.SubmitToSeenP99ms = round3(Percentile(seen, 0.50)), round3(Percentile(seen, 0.99))
	res.ClusterFull, res.GPUFill = st.full, round3(st.fill)
	res.LeaderCPUCores, res.LeaderRSSMiB, res.FollowerRSSMiB = mon.figures()
	res.FailoverS = st.failoverS
	down, err := nodesMarkedDown(ctx, slow)
	if err != nil {
		fmt.Fprintf(cfg.Log, "  listing nodes: %v\n", err)
	}
	// -1: not measured (a listing of the nodes timed out, or no kill).
	res.NodesMarkedDownByFailover, res.NodesMarkedDownByLoad = -1, -1
	if st.downBefore != nil && st.downAfterFailover != nil {
		res.NodesMarkedDownByFailover = countChanged(st.downBefore, st.downAfterFailover)
	}
	if down != nil {
		res.NodesMarkedDownByLoad = len(down) - max(res.NodesMarkedDownByFailover, 0)
	}
	res.LeaderChanges = leaderChanges(ctx, c, st.killed)
	res.UnforcedElections = unforcedElections(res.LeaderChanges, st.killed != "")
	endIdx := lastIndex(ctx, slow)

	stopAgents()
	waitAgents()
	stopMon()
	// The Raft log's bytes: read from a server that ran throughout, once
	// it has stopped (bolt locks its file).
	if res.Jobs > 0 && endIdx > startIdx {
		if s, ok := survivor(c, st.killed); ok {
			c.Kill(s)
			avg, err := avgEntryBytes(filepath.Join(s.Dir(), "raft", "raft.db"), startIdx)
			if err != nil {
				fmt.Fprintf(cfg.Log, "  reading the raft log: %v\n", err)
			}
			entries := float64(endIdx - startIdx)
			res.RaftEntriesPerJob = round1(entries / float64(res.Jobs))
			res.RaftLogBytesPerJob = round1(avg * entries / float64(res.Jobs))
		}
	}
	return res, nil
}

// survivor is a server that was not killed, not the one killed.
func survivor(c *raftbench.Cluster, killed string) (raftbench.Server, bool) {
	for _, s := range c.Servers() {
		if s.Name() != killed && s.Pid() != 0 {
			return s, true
		}
	}
	return raftbench.Server{}, false
}

func lastIndex(ctx context.Context, cl *client.Client) uint64 {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	self, err := cl.ServerSelf(rctx)
	if err != nil {
		return 0
	}
	return self.LastIndex
}

// settle waits until every job submitted with room runs, or no
// allocation has appeared for settleQuiet, or settleMax has passed: the
// scheduler places in bursts, seconds apart at 10,000 nodes.
func settle(ctx context.Context, tr *tracker, fl *fleet, log io.Writer) {
	start := time.Now()
	for time.Since(start) < settleMax && ctx.Err() == nil {
		w := tr.waiting()
		if w == 0 || time.Since(time.Unix(0, fl.lastPlacement.Load())) > settleQuiet {
			fmt.Fprintf(log, "  settled after %.0f s: %d jobs submitted with room not running\n", time.Since(start).Seconds(), w)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(log, "  stopped waiting after %.0f s: %d jobs submitted with room not running\n", time.Since(start).Seconds(), tr.waiting())
}

const (
	settleQuiet = 30 * time.Second
	settleMax   = 2 * time.Minute
)

// stream is what the job stream did.
type stream struct {
	start             time.Time
	elapsed           time.Duration
	ok, bad           int64
	full              bool
	fill              float64 // of the GPU capacity, when the stream ended
	killed            string
	killedAt          time.Time
	failoverS         float64
	downBefore        map[string]string
	downAfterFailover map[string]string
	// lagMs are, in an open-loop stream, how long each arrival waited
	// for a free submitter and for room in the cluster (ms).
	lagMs []float64
}

// runStream submits jobs from cfg.Clients clients until the cluster is full
// or a bound is reached, killing the leader once half way.
func runStream(ctx context.Context, cfg Config, c *raftbench.Cluster, cl, slow *client.Client, mix *Mix, tr *tracker,
	fl *fleet, mon *monitor) *stream {
	st := &stream{start: time.Now()}
	var (
		seq       atomic.Int64
		ok, bad   atomic.Int64
		stopped   atomic.Bool
		full      atomic.Bool
		mixMu     sync.Mutex
		killAt    atomic.Int64 // unix ns of the kill; 0 before
		firstPost atomic.Int64 // unix ns of the first write taken after it
	)
	deadline := time.Time{}
	if cfg.Duration > 0 {
		deadline = st.start.Add(cfg.Duration)
	}
	stop := func() bool {
		return stopped.Load() || ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) ||
			(cfg.Jobs > 0 && seq.Load() >= int64(cfg.Jobs))
	}
	mon.startCounting(fl)
	// Open loop: arrivals come at cfg.Rate whatever the servers do, and a
	// job's latency counts from its arrival, so time spent waiting for a
	// free submitter is part of it (no coordinated omission).
	var (
		ticks chan time.Time
		lagMu sync.Mutex
	)
	if cfg.Rate > 0 {
		pctx, stopPacer := context.WithCancel(ctx)
		defer stopPacer()
		ticks = make(chan time.Time, arrivalQueue)
		go newArrivals(cfg.Rate, cfg.Seed).run(pctx, st.start, stop, ticks)
		fmt.Fprintf(cfg.Log, "job stream: %.1f arrivals/s (Poisson), up to %d submissions in flight\n", cfg.Rate, cfg.Clients)
	} else {
		fmt.Fprintf(cfg.Log, "job stream: %d clients, closed loop\n", cfg.Clients)
	}
	var wg sync.WaitGroup
	for i := 0; i < cfg.Clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop() {
				var arrived time.Time
				if ticks != nil {
					at, more := <-ticks
					if !more {
						return
					}
					arrived = at
				}
				mixMu.Lock()
				s := mix.Next()
				mixMu.Unlock()
				if tr.fill()+float64(s.Milli())/float64(tr.capacity) > 1 {
					full.Store(true)
					stopped.Store(true)
					tr.wake()
					return
				}
				room, got := tr.reserve(s, roomFrac, stop)
				if !got {
					return
				}
				n := seq.Add(1)
				sent := time.Now()
				t0 := sent
				if !arrived.IsZero() {
					lagMu.Lock()
					st.lagMs = append(st.lagMs, float64(t0.Sub(arrived).Microseconds())/1000)
					lagMu.Unlock()
					t0 = arrived
				}
				resp, err := cl.SubmitJob(ctx, s.Spec(fmt.Sprintf("sim-%d", n), fmt.Sprintf("team-%02d", n%32)))
				if err != nil {
					if bad.Add(1) <= 3 {
						fmt.Fprintf(cfg.Log, "  submission failed: %v\n", err)
					}
					tr.unreserve(s)
					continue
				}
				ok.Add(1)
				// The failover ends with the first write sent after the
				// kill and taken (sent, not arrived: an open-loop
				// arrival may have waited since before the kill).
				if k := killAt.Load(); k != 0 && sent.UnixNano() >= k {
					firstPost.CompareAndSwap(0, time.Now().UnixNano())
				}
				tr.submitted(resp.ID, s, t0, room)
			}
		}()
	}
	// The leader dies once, half way.
	failover := make(chan struct{})
	if !cfg.KillLeader {
		close(failover)
	} else {
		go func() {
			defer close(failover)
			for !stop() {
				half := tr.fill() >= 0.5 || (cfg.Jobs > 0 && seq.Load() >= int64(cfg.Jobs/2)) ||
					(!deadline.IsZero() && time.Since(st.start) >= cfg.Duration/2)
				if half {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if stop() {
				return
			}
			l, err := c.Leader(ctx, 30*time.Second)
			if err != nil {
				// The result says no kill (failover_s 0, marked down -1);
				// the log says why.
				fmt.Fprintf(cfg.Log, "  no leader to kill: %v\n", err)
				return
			}
			if st.downBefore, err = nodesMarkedDown(ctx, slow); err != nil {
				fmt.Fprintf(cfg.Log, "  listing nodes before the kill: %v\n", err)
			}
			fmt.Fprintf(cfg.Log, "  killing the leader %s at %.1f s (fill %.0f%%)\n", l.Name(), time.Since(st.start).Seconds(), 100*tr.fill())
			st.killed = l.Name()
			c.Kill(l)
			st.killedAt = time.Now()
			killAt.Store(st.killedAt.UnixNano())
			nl, err := c.Leader(ctx, 60*time.Second)
			if err == nil {
				mon.setLeader(nl)
			}
			for firstPost.Load() == 0 && !stop() {
				time.Sleep(10 * time.Millisecond)
			}
			if p := firstPost.Load(); p != 0 {
				st.failoverS = round3(float64(p-killAt.Load()) / 1e9)
				fmt.Fprintf(cfg.Log, "  first submission taken %.3f s after the kill\n", st.failoverS)
			}
			if err := c.Restart(l); err != nil {
				fmt.Fprintf(cfg.Log, "  restarting %s: %v\n", l.Name(), err)
			}
			// A node the failover cost is marked down one TTL (plus the
			// new leader's grace TTL) after the election; look after that.
			time.Sleep(max(25*time.Second, 2*time.Duration(fl.maxTTL.Load())+5*time.Second))
			if st.downAfterFailover, err = nodesMarkedDown(ctx, slow); err != nil {
				fmt.Fprintf(cfg.Log, "  listing nodes after the failover: %v\n", err)
			}
		}()
	}
	tick := time.NewTicker(5 * time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			fmt.Fprintf(cfg.Log, "  %5.0f s: %d submitted, %d placed, fill %.0f%%, %d heartbeats\n",
				time.Since(st.start).Seconds(), ok.Load(), fl.placements.Load(), 100*tr.fill(), fl.heartbeats.Load())
			tr.wake()
		}
	}
	tick.Stop()
	st.elapsed = time.Since(st.start)
	st.ok, st.bad, st.full, st.fill = ok.Load(), bad.Load(), full.Load(), tr.fill()
	// A failover in progress is waited for: its figures are the point.
	<-failover
	return st
}

// profileLeader takes CPU profiles of whichever server leads, one window
// of cfg.ProfileSeconds after another, until ctx ends (a window the
// leader's death cuts short is lost, and said so in errs).
func profileLeader(ctx context.Context, cfg Config, c *raftbench.Cluster, errs *profileErrors) {
	if cfg.ProfileDir == "" {
		return
	}
	for i := 1; ctx.Err() == nil; i++ {
		l, err := c.Leader(ctx, 30*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				errs.add(fmt.Errorf("leader-cpu-%02d: no leader: %w", i, err))
			}
			continue
		}
		err = saveProfile(ctx, l.HTTP(), fmt.Sprintf("profile?seconds=%d", max(cfg.ProfileSeconds, 1)),
			filepath.Join(cfg.ProfileDir, fmt.Sprintf("leader-cpu-%02d-%s.pprof", i, l.Name())), cfg.Log)
		if ctx.Err() == nil {
			errs.add(err)
		}
	}
}

// profileErrors collects why profile files were not written, at most
// maxProfileErrors of them and a count of the rest.
type profileErrors struct {
	mu   sync.Mutex
	errs []string
	more int
}

const maxProfileErrors = 20

func (p *profileErrors) add(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == maxProfileErrors {
		p.more++
		return
	}
	p.errs = append(p.errs, err.Error())
}

func (p *profileErrors) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.errs)
	if p.more > 0 {
		out = append(out, fmt.Sprintf("and %d more", p.more))
	}
	return out
}

// pendingReasons counts the pending jobs and logs their commonest
// reasons: what holds the queue when jobs submitted with room wait.
func pendingReasons(ctx context.Context, cl *client.Client, log io.Writer) int {
	jobs, err := cl.Jobs(ctx, "pending")
	if err != nil {
		fmt.Fprintf(log, "  listing pending jobs: %v\n", err)
		return 0
	}
	count := map[string]int{}
	for _, j := range jobs {
		r := j.Reason
		if len(r) > 160 {
			r = r[:160] + "..."
		}
		count[r]++
	}
	reasons := make([]string, 0, len(count))
	for r := range count {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, k int) bool { return count[reasons[i]] > count[reasons[k]] })
	for i, r := range reasons {
		if i == 3 {
			break
		}
		fmt.Fprintf(log, "  %d pending: %q\n", count[r], r)
	}
	return len(jobs)
}

// saveProfile fetches /debug/pprof/NAME from a server into path.
func saveProfile(ctx context.Context, addr, name, path string, log io.Writer) error {
	return raftbench.SaveURL(ctx, "http://"+addr+"/debug/pprof/"+name, path, log)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
