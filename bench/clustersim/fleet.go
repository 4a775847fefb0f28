package clustersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/inventory"
)

// GPUsPerNode is every simulated node's GPU count.
const GPUsPerNode = 8

// Node resources beside the GPUs: openb's most common 8-GPU machine (G2:
// 96 cores, 384 GiB).
const (
	nodeCPUMilli = 96000
	nodeMemory   = 384 << 30
	fakeGPUs     = "8xH100:80Gi"
)

// agentsPerHost agents share one HTTP transport and one source address
// (127.a.b.c): each real agent dials from its own host, and the servers cap
// connections per address (--max-conns-per-client, 512), so 10,000 agents
// from 127.0.0.1 would be refused past the 512th long-poll.
const agentsPerHost = 64

// fleet is N simulated agents.
type fleet struct {
	addrs    []string
	duration time.Duration // mean simulated task run time
	hooks    fleetHooks
	rng      sync.Mutex
	rand     *rand.Rand

	heartbeats, heartbeatErrs atomic.Int64
	registered, reregistered  atomic.Int64
	// notFoundHB and notFoundSync count the 404s ("this node is not
	// registered") that made an agent register again, by the loop that
	// got them.
	notFoundHB, notFoundSync atomic.Int64
	placements, reportErrs   atomic.Int64
	polls                    atomic.Int64 // long-polls answered
	succeeded                atomic.Int64 // tasks reported succeeded
	// regErrs counts agents whose registration was refused; firstRegErr
	// is the first refusal.
	regErrs     atomic.Int64
	firstRegErr atomic.Value
	// lastHBErr is the last heartbeat error, for the log: what failed;
	// hbErrKinds counts them by kind (errKind).
	lastHBErr     atomic.Value
	hbErrMu       sync.Mutex
	hbErrKinds    map[string]int64
	lastPlacement atomic.Int64 // unix nanoseconds
	// maxTTL is the longest heartbeat TTL the servers told an agent
	// (nanoseconds): it grows with the cluster (scheduler/server
	// heartbeat.go), and a failover's grace is two of it.
	maxTTL atomic.Int64
}

// toldTTL records a TTL an answer gave an agent.
func (f *fleet) toldTTL(ttl time.Duration) {
	for {
		cur := f.maxTTL.Load()
		if int64(ttl) <= cur || f.maxTTL.CompareAndSwap(cur, int64(ttl)) {
			return
		}
	}
}

// fleetHooks tell the job tracker what the agents see.
type fleetHooks struct {
	// seen is called when a rank's allocation reached its agent.
	seen func(jobID string, at time.Time)
	// running is called when a rank's running report was taken.
	running func(jobID string, at time.Time)
	// ended is called when a task ended (succeeded, failed or stopped).
	ended func(jobID string)
}

func newFleet(addrs []string, duration time.Duration, seed uint64, hooks fleetHooks) *fleet {
	return &fleet{addrs: addrs, duration: duration, hooks: hooks, rand: rand.New(rand.NewPCG(seed, 7))}
}

// hostIP is the loopback address agent i dials from and advertises.
func hostIP(i int) net.IP {
	h := i / agentsPerHost
	return net.IPv4(127, byte(10+h/62500), byte(h/250%250), byte(h%250+1))
}

// transportFor is the HTTP transport of one simulated host. Its agents'
// long-polls hold one connection each; the idle pool only needs to serve
// their heartbeats and reports (a few a second per host), and is kept
// small: at 256 idle connections per host, 10,000 agents could hold
// 40,000 sockets, and past the process's limit (20,000 here) their dials
// failed with "too many open files".
func transportFor(ip net.IP) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{DialContext: d.DialContext, MaxIdleConns: agentsPerHost / 2,
		MaxIdleConnsPerHost: agentsPerHost / 4, IdleConnTimeout: 30 * time.Second}
}

// taskTime draws a task's simulated run time: the mean ±50%.
func (f *fleet) taskTime() time.Duration {
	f.rng.Lock()
	defer f.rng.Unlock()
	return time.Duration(float64(f.duration) * (0.5 + f.rand.Float64()))
}

// start starts n agents; each registers (at most regConc at a time), then
// heartbeats and long-polls until ctx ends. ready is closed once all have
// registered.
func (f *fleet) start(ctx context.Context, n, regConc int) (ready chan struct{}, wait func()) {
	var wg sync.WaitGroup
	var regWG sync.WaitGroup
	sem := make(chan struct{}, regConc)
	ready = make(chan struct{})
	var tr *http.Transport
	for i := 0; i < n; i++ {
		ip := hostIP(i)
		if i%agentsPerHost == 0 {
			tr = transportFor(ip)
		}
		// Agents list every server; each starts at a different one, as
		// operators spread them (the client sticks to whichever answers).
		addrs := make([]string, len(f.addrs))
		for k := range f.addrs {
			addrs[k] = f.addrs[(i+k)%len(f.addrs)]
		}
		cl, err := client.New(addrs...)
		if err != nil {
			panic(err) // the cluster's own addresses
		}
		cl.SetHTTPClient(&http.Client{Transport: tr})
		a := &simAgent{f: f, name: fmt.Sprintf("sim-%05d", i), ip: ip.String(), cl: cl, fabric: fmt.Sprintf("rack-%03d", i/32), tasks: map[string]*simTask{}}
		wg.Add(1)
		regWG.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			err := a.register(ctx)
			<-sem
			regWG.Done()
			if err != nil {
				if f.regErrs.Add(1) == 1 {
					f.firstRegErr.Store(err.Error())
				}
				return
			}
			f.registered.Add(1)
			a.run(ctx)
		}()
	}
	go func() { regWG.Wait(); close(ready) }()
	return ready, wg.Wait
}

// simAgent is one simulated node's agent.
type simAgent struct {
	f      *fleet
	name   string
	ip     string
	fabric string
	cl     *client.Client

	idMu sync.Mutex
	id   string
	ttl  time.Duration
	gen  uint64

	mu    sync.Mutex
	tasks map[string]*simTask
}

// simTask is one allocation the agent "runs": a timer to its success.
type simTask struct {
	timer *time.Timer
	done  bool
}

func (a *simAgent) identity() (string, time.Duration, uint64) {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	return a.id, a.ttl, a.gen
}

// register registers the node as worker/agent's registerLocked does:
// retried with backoff until it is taken or refused for good.
func (a *simAgent) register(ctx context.Context) error {
	gpus, err := inventory.ParseFake(fakeGPUs, a.name)
	if err != nil {
		return err
	}
	id, _, _ := a.identity()
	node := &api.Node{ID: id, Name: a.name, Address: a.ip, AgentAddr: net.JoinHostPort(a.ip, "1"), GPUs: gpus,
		CPUMilli: nodeCPUMilli, MemoryBytes: nodeMemory, Fake: true, Fabric: a.fabric}
	backoff := 200 * time.Millisecond
	for {
		resp, err := a.cl.RegisterNode(ctx, node)
		if err == nil {
			if resp.Secret != "" {
				a.cl.SetToken(resp.Secret)
			}
			ttl := client.HeartbeatTTL(resp.HeartbeatTTL)
			a.f.toldTTL(ttl)
			a.idMu.Lock()
			a.id, a.ttl = resp.ID, ttl
			a.gen++
			a.idMu.Unlock()
			return nil
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 {
			return fmt.Errorf("register %s: %w", a.name, err)
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (a *simAgent) reregister(ctx context.Context, gen uint64) {
	if _, _, now := a.identity(); now != gen {
		return
	}
	if a.register(ctx) == nil {
		a.f.reregistered.Add(1)
	}
}

func (a *simAgent) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.heartbeatLoop(ctx) }()
	a.syncLoop(ctx)
	wg.Wait()
	a.mu.Lock()
	for _, t := range a.tasks {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	a.mu.Unlock()
}

// heartbeatLoop is worker/agent's: a heartbeat every TTL/3 (jittered),
// with the TTL each answer gives, and a failed one retried sooner
// (client.HeartbeatRetry).
func (a *simAgent) heartbeatLoop(ctx context.Context) {
	failures := 0
	for {
		id, ttl, gen := a.identity()
		wait := client.HeartbeatPace(ttl)
		if failures > 0 {
			wait = client.HeartbeatRetry(ttl, failures)
		}
		if !sleep(ctx, wait) {
			return
		}
		resp, err := a.cl.Heartbeat(ctx, id)
		if client.Retryable(err) && ctx.Err() == nil {
			failures++
		} else {
			failures = 0
		}
		switch {
		case err == nil:
			a.f.heartbeats.Add(1)
			ttl := client.HeartbeatTTL(resp.HeartbeatTTL)
			a.f.toldTTL(ttl)
			a.idMu.Lock()
			if a.gen == gen {
				a.ttl = ttl
			}
			a.idMu.Unlock()
		case client.IsNotFound(err):
			a.f.notFoundHB.Add(1)
			a.reregister(ctx, gen)
		case ctx.Err() == nil:
			a.f.heartbeatErrs.Add(1)
			a.f.lastHBErr.Store(err.Error())
			a.f.hbErrMu.Lock()
			if a.f.hbErrKinds == nil {
				a.f.hbErrKinds = map[string]int64{}
			}
			a.f.hbErrKinds[errKind(err)]++
			a.f.hbErrMu.Unlock()
		}
	}
}

// syncLoop is worker/agent's: long-poll the node's allocations (30 s) and
// reconcile.
func (a *simAgent) syncLoop(ctx context.Context) {
	var index uint64
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		id, _, gen := a.identity()
		allocs, idx, err := a.cl.NodeAllocations(ctx, id, index, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if client.IsNotFound(err) {
				a.f.notFoundSync.Add(1)
				a.reregister(ctx, gen)
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		a.f.polls.Add(1)
		backoff = 200 * time.Millisecond
		if idx < index {
			index = 0
		} else {
			index = idx
		}
		a.reconcile(ctx, allocs)
	}
}

// reconcile follows worker/agent's reconcile, with a timer in place of a
// driver: a new allocation is reported running at once and succeeded
// after its simulated run time; one the servers stop is reported failed.
func (a *simAgent) reconcile(ctx context.Context, allocs []*api.Allocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	current := make(map[string]bool, len(allocs))
	for _, al := range allocs {
		current[al.ID] = true
		t := a.tasks[al.ID]
		switch {
		case al.DesiredStatus == api.DesiredRun && t == nil && al.Status == api.AllocPending:
			a.startLocked(ctx, al)
		case al.DesiredStatus == api.DesiredRun && t == nil && al.Status == api.AllocRunning:
			a.tasks[al.ID] = &simTask{done: true}
			go a.report(ctx, al, api.AllocStatusUpdate{Status: api.AllocFailed, Message: "the agent restarted and no longer runs this task"})
		case al.DesiredStatus == api.DesiredStop && t != nil && !t.done:
			t.timer.Stop()
			t.done = true
			go a.report(ctx, al, api.AllocStatusUpdate{Status: api.AllocFailed, Message: "stopped by the scheduler"})
		case al.DesiredStatus == api.DesiredStop && t == nil && !al.Terminal():
			a.tasks[al.ID] = &simTask{done: true}
			go a.report(ctx, al, api.AllocStatusUpdate{Status: api.AllocFailed, Message: "stopped by the scheduler before it started"})
		}
	}
	for id, t := range a.tasks {
		if !current[id] && t.done {
			delete(a.tasks, id)
		}
	}
}

func (a *simAgent) startLocked(ctx context.Context, al *api.Allocation) {
	f := a.f
	now := time.Now()
	f.placements.Add(1)
	f.lastPlacement.Store(now.UnixNano())
	if f.hooks.seen != nil {
		f.hooks.seen(al.JobID, now)
	}
	t := &simTask{}
	a.tasks[al.ID] = t
	go func() {
		if a.report(ctx, al, api.AllocStatusUpdate{Status: api.AllocRunning}) && f.hooks.running != nil {
			f.hooks.running(al.JobID, time.Now())
		}
	}()
	t.timer = time.AfterFunc(f.taskTime(), func() {
		a.mu.Lock()
		if t.done {
			a.mu.Unlock()
			return
		}
		t.done = true
		a.mu.Unlock()
		code := 0
		if a.report(ctx, al, api.AllocStatusUpdate{Status: api.AllocSucceeded, ExitCode: &code}) {
			f.succeeded.Add(1)
		}
	})
}

// report is worker/agent's report: retried until the servers take it,
// refuse it, or ctx ends; "not found" is retried for a while (a new leader
// that has not applied its log yet). It reports whether it was taken.
func (a *simAgent) report(ctx context.Context, al *api.Allocation, u api.AllocStatusUpdate) bool {
	if u.Status != api.AllocRunning && a.f.hooks.ended != nil {
		defer a.f.hooks.ended(al.JobID)
	}
	backoff := 100 * time.Millisecond
	notFoundUntil := time.Now().Add(30 * time.Second)
	for {
		err := a.cl.UpdateAllocStatus(ctx, al.ID, u)
		if err == nil {
			return true
		}
		var ae *client.APIError
		if client.IsNotFound(err) && time.Now().Before(notFoundUntil) && ctx.Err() == nil {
			sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		if (errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500) || ctx.Err() != nil {
			a.f.reportErrs.Add(1)
			return false
		}
		sleep(ctx, backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errKind sorts a failed call for the report: the HTTP status the
// servers answered with the class of its error text ("HTTP 503: no leader
// elected; retry shortly"), a timeout, a refused or reset connection, or
// other.
func errKind(err error) string {
	var ae *client.APIError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d: %s", ae.StatusCode, errClass(ae.Body.Error))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection refused or reset"
	}
	return "other: " + errClass(err.Error())
}

// errClass is an error text with what varies from one call to the next
// (node and job IDs, addresses, numbers, quoted names) replaced, so that
// one cause counts as one kind; cut at 100 characters.
func errClass(msg string) string {
	msg = quoted.ReplaceAllString(msg, `"…"`)
	msg = address.ReplaceAllString(msg, "ADDR")
	msg = number.ReplaceAllString(msg, "N")
	if r := []rune(msg); len(r) > 100 {
		msg = string(r[:100]) + "…"
	}
	return msg
}

var (
	quoted  = regexp.MustCompile(`"[^"]*"`)
	address = regexp.MustCompile(`(https?://)?[0-9a-zA-Z.\-]+:[0-9]+`)
	number  = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(ns|µs|ms|s|m|h)?`)
)
