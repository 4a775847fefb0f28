package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/driver"
)

// task is one allocation this agent runs.
type task struct {
	alloc *api.Allocation // as it was started
	// live is the servers' latest view of the allocation (an update
	// applied in place changes its task's rules); nil until one comes.
	live     atomic.Pointer[api.Allocation]
	dir      string
	stopOnce sync.Once
	stopCh   chan string // carries the reason the task is stopped
	done     chan struct{}
	// metrics are the task's latest reported figures (taskmetrics.go).
	metrics atomic.Pointer[api.TaskMetrics]
}

// view is the latest view of the task's allocation.
func (t *task) view() *api.Allocation {
	if al := t.live.Load(); al != nil {
		return al
	}
	return t.alloc
}

func (t *task) stop(reason string) {
	t.stopOnce.Do(func() { t.stopCh <- reason })
}

func (t *task) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// syncLoop long-polls the node's allocations and reconciles what runs here
// with what the servers want, until ctx ends.
func (a *Agent) syncLoop(ctx context.Context) {
	var index uint64
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		id, _, gen := a.identity()
		allocs, idx, err := a.client.NodeAllocations(ctx, id, index, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if client.IsNotFound(err) {
				a.log.Warn("servers do not know this node; registering again")
				if err := a.reregister(ctx, gen); err != nil {
					continue
				}
			} else {
				a.log.Warn("fetching allocations failed", zap.Error(err), zap.Duration("retry_in", backoff))
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		if idx < index {
			// The servers' state went back (restored from a snapshot):
			// start over rather than wait for an index that may never come.
			index = 0
		} else {
			index = idx
		}
		a.reconcile(ctx, allocs)
	}
}

// reconcile starts what should run and stops what should not.
func (a *Agent) reconcile(ctx context.Context, allocs []*api.Allocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	current := map[string]bool{}
	for _, al := range allocs {
		current[al.ID] = true
		t := a.tasks[al.ID]
		if t != nil {
			t.live.Store(al)
		}
		switch {
		case al.DesiredStatus == api.DesiredRun && t == nil && al.Status == api.AllocPending:
			a.startLocked(ctx, al)
		case al.DesiredStatus == api.DesiredRun && t == nil && al.Status == api.AllocRunning:
			// The servers think this node runs it, but this agent has no
			// such task: it was started by an earlier run of the agent.
			a.reportAsync(ctx, al.ID, api.AllocStatusUpdate{Status: api.AllocFailed, Message: "the agent restarted and no longer runs this task"})
			a.tasks[al.ID] = doneTask(al)
		case al.DesiredStatus == api.DesiredStop && t != nil && !t.finished():
			t.stop(stopMessage(al))
		case al.DesiredStatus == api.DesiredStop && t == nil && !al.Terminal():
			// Reported as failed, as an agent always did: the servers
			// record the stop's cause (api.Allocation.StopCause) instead.
			a.reportAsync(ctx, al.ID, api.AllocStatusUpdate{Status: api.AllocFailed, Message: stopMessage(al) + " before it started"})
			a.tasks[al.ID] = doneTask(al)
		}
	}
	// Forget finished tasks the servers no longer list.
	for id, t := range a.tasks {
		if !current[id] && t.finished() {
			delete(a.tasks, id)
		}
	}
}

// stopMessage says why the scheduler stopped a task, as far as the
// allocation tells (servers older than stop causes name none).
func stopMessage(al *api.Allocation) string {
	switch al.StopCause {
	case api.AllocCancelled:
		return "stopped by the scheduler: job cancelled"
	case api.AllocPreempted:
		return "stopped by the scheduler: preempted"
	case api.AllocDrained:
		return "stopped by the scheduler: moved off a draining node"
	case api.AllocStopped:
		return "stopped by the scheduler: another rank of the job ended or its service changed"
	}
	return "stopped by the scheduler (job cancelled or another rank ended)"
}

func doneTask(al *api.Allocation) *task {
	t := &task{alloc: al, stopCh: make(chan string, 1), done: make(chan struct{})}
	close(t.done)
	return t
}

func (a *Agent) startLocked(ctx context.Context, al *api.Allocation) {
	t := &task{
		alloc:  al,
		dir:    filepath.Join(a.cfg.DataDir, "allocs", al.ID),
		stopCh: make(chan string, 1),
		done:   make(chan struct{}),
	}
	a.tasks[al.ID] = t
	a.met.taskStarted(al)
	a.taskWG.Add(1)
	go a.runTask(ctx, t)
}

// runTask runs one allocation to its end and reports each change of state.
func (a *Agent) runTask(ctx context.Context, t *task) {
	defer a.taskWG.Done()
	defer close(t.done)
	al := t.alloc
	log := a.log.With(zap.String("alloc", al.ID), zap.String("job", al.JobID), zap.Int("rank", al.Rank))
	final := func(u api.AllocStatusUpdate) { a.final(ctx, al.ID, u) }
	drv, ok := a.drivers[al.Task.Driver]
	if !ok {
		final(api.AllocStatusUpdate{Status: api.AllocFailed, Message: fmt.Sprintf("%v: this node has no %q driver", driver.ErrUnsupported, al.Task.Driver)})
		return
	}
	if err := prepareCheckpointDir(al.CheckpointURI, a.cfg.TaskUser); err != nil {
		log.Warn("task failed to start", zap.Error(err))
		final(api.AllocStatusUpdate{Status: api.AllocFailed, Message: err.Error()})
		return
	}
	if err := writeCheckpointKey(al, t.dir, a.cfg.TaskUser); err != nil {
		log.Warn("task failed to start", zap.Error(err))
		final(api.AllocStatusUpdate{Status: api.AllocFailed, Message: err.Error()})
		return
	}
	mpsPipe := a.mps.acquire(al, a.shareGPUUUIDs(al)) // a share's MPS daemon runs before its task
	detached := false
	defer func() {
		if !detached { // a task left running keeps its daemon
			a.mps.release(al.ID)
		}
	}()
	h, err := drv.Start(ctx, driver.TaskConfig{
		AllocID: al.ID, Kind: al.Kind, Task: al.Task, CPUMilli: al.CPUMilli, MemoryBytes: al.MemoryBytes, Cgroups: a.cgroups,
		Env: withEnv(a.taskEnv(al, t.dir), "CUDA_MPS_PIPE_DIRECTORY", mpsPipe), Dir: t.dir,
		CheckpointEvery: al.Checkpoint.Every, CheckpointKeep: al.Checkpoint.Keep,
		Stdout: logPath(t.dir, "stdout"), Stderr: logPath(t.dir, "stderr"), User: a.cfg.TaskUser,
		LogMaxBytes: a.cfg.LogMaxBytes, LogKeep: a.cfg.LogKeep,
	})
	if err != nil {
		log.Warn("task failed to start", zap.Error(err))
		final(api.AllocStatusUpdate{Status: api.AllocFailed, Message: err.Error()})
		return
	}
	log.Info("task started", zap.Int("pid", h.Pid()), zap.Ints("gpus", al.GPUs))
	started := api.AllocStatusUpdate{Status: api.AllocRunning}
	if why := a.shareUnenforced(al); why != "" {
		log.Warn("GPU share runs without enforced limits", zap.String("why", why))
		started.Message = why
	}
	go a.report(ctx, al.ID, started)
	hctx, stopHealth := context.WithCancel(ctx)
	if check := healthOf(al); check != nil {
		a.taskWG.Add(1)
		go func() { defer a.taskWG.Done(); a.runHealth(hctx, t, check, false, log) }()
	}
	detached = a.watch(ctx, t, h, log)
	stopHealth()
}

// watch follows a running task to its end, stopping it when asked, and
// reports how it ended. It reports whether it left the task running
// instead (KeepTasksOnExit).
func (a *Agent) watch(ctx context.Context, t *task, h driver.Handle, log *zap.Logger) (detached bool) {
	al := t.alloc
	stopReason := ""
	var detach <-chan struct{} // nil: never
	if a.cfg.KeepTasksOnExit {
		detach = ctx.Done()
	}
	select {
	case <-detach:
		// The agent shuts down and leaves the task to its next run,
		// which re-attaches and reports how it ends.
		log.Info("leaving task running")
		return true
	case <-h.Done():
	case stopReason = <-t.stopCh:
		if d := time.Duration(al.Task.ShutdownDelay); d > 0 && al.Port != 0 {
			// A service replica: the servers' endpoint stopped routing to
			// it when the stop was committed; requests already sent finish
			// before the task is signalled.
			log.Info("task stops after its shutdown delay", zap.String("why", stopReason), zap.Duration("delay", d))
			select {
			case <-time.After(d):
			case <-h.Done():
			}
		}
		log.Info("stopping task", zap.String("why", stopReason))
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.StopGrace+5*time.Second)
		if err := h.Stop(sctx, a.cfg.StopGrace); err != nil {
			log.Warn("stopping task failed", zap.Error(err))
		}
		cancel()
		<-h.Done()
	}
	res := h.Result()
	u := withStderrTail(resultUpdate(res, stopReason), t.dir, stopReason)
	log.Info("task ended", zap.String("status", u.Status), zap.Int("exit_code", res.ExitCode), zap.String("signal", res.Signal))
	a.final(ctx, al.ID, u)
	return false
}

// final reports a task's end, even while the agent shuts down.
func (a *Agent) final(ctx context.Context, allocID string, u api.AllocStatusUpdate) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.met.taskEnded(u.Status)
	a.report(rctx, allocID, u)
}

// resultUpdate turns a driver result into the final status report.
func resultUpdate(res driver.Result, stopReason string) api.AllocStatusUpdate {
	u := api.AllocStatusUpdate{Status: api.AllocSucceeded, Signal: res.Signal, Message: stopReason}
	code := res.ExitCode
	u.ExitCode = &code
	if !res.Succeeded() || stopReason != "" {
		u.Status = api.AllocFailed
		if res.Err != nil {
			u.Message = res.Err.Error()
		}
	}
	return u
}

// reattach finds the tasks an earlier run of this agent started that the
// servers still count as running here, and follows them again: a task that
// still runs is watched to its end; one that ended while the agent was
// away is reported with the exit status its supervisor recorded. Nothing is
// left running unknown to the agent, and nothing is started twice.
func (a *Agent) reattach(ctx context.Context) {
	allocs, _, err := a.client.NodeAllocations(ctx, a.NodeID(), 0, 0)
	if err != nil {
		a.log.Warn("cannot list this node's allocations to re-attach to its tasks", zap.Error(err))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range allocs {
		if al.Terminal() || al.Status == api.AllocPending {
			continue
		}
		dir := filepath.Join(a.cfg.DataDir, "allocs", al.ID)
		log := a.log.With(zap.String("alloc", al.ID), zap.String("job", al.JobID), zap.Int("rank", al.Rank))
		h, res, err := driver.Reattach(dir)
		t := &task{alloc: al, dir: dir, stopCh: make(chan string, 1), done: make(chan struct{})}
		switch {
		case err != nil:
			log.Warn("task left by an earlier agent cannot be found", zap.Error(err))
			a.tasks[al.ID] = doneTask(al)
			a.reportAsync(ctx, al.ID, api.AllocStatusUpdate{Status: api.AllocFailed, Message: "lost while the agent was down: " + err.Error()})
		case res != nil:
			log.Info("task ended while the agent was down", zap.Int("exit_code", res.ExitCode), zap.String("signal", res.Signal))
			a.tasks[al.ID] = doneTask(al)
			a.reportAsync(ctx, al.ID, withStderrTail(resultUpdate(*res, ""), dir, ""))
		default:
			log.Info("re-attached to a running task", zap.Int("pid", h.Pid()))
			a.tasks[al.ID] = t
			a.mps.acquire(al, a.shareGPUUUIDs(al)) // adopts its daemon, before sweep stops the unheld ones
			// A service replica's health is checked again, from where
			// it stood: a ready one that now fails is restarted.
			hctx, stopHealth := context.WithCancel(ctx)
			if check := healthOf(al); check != nil {
				a.taskWG.Add(1)
				go func() { defer a.taskWG.Done(); a.runHealth(hctx, t, check, al.Ready, log) }()
			}
			a.taskWG.Add(1)
			go func() {
				defer a.taskWG.Done()
				defer close(t.done)
				defer stopHealth()
				if !a.watch(ctx, t, h, log) {
					a.mps.release(al.ID)
				}
			}()
		}
	}
}

// report sends a status update, retrying until the servers take it, reject
// it, or ctx ends.
func (a *Agent) report(ctx context.Context, allocID string, u api.AllocStatusUpdate) {
	backoff := 100 * time.Millisecond
	// An allocation this agent runs came from the servers, so "not found"
	// is first taken for a new leader that has not yet applied its log
	// (a failover): retried for a while, then believed (GC'd).
	notFoundUntil := time.Now().Add(notFoundPatience)
	for {
		err := a.client.UpdateAllocStatus(ctx, allocID, u)
		if err == nil {
			return
		}
		var ae *client.APIError
		if client.IsNotFound(err) && time.Now().Before(notFoundUntil) && ctx.Err() == nil {
			sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 {
			a.log.Warn("servers rejected a task report", zap.String("alloc", allocID), zap.Error(err))
			return
		}
		if ctx.Err() != nil {
			a.log.Warn("gave up reporting task state", zap.String("alloc", allocID), zap.String("status", u.Status), zap.Error(err))
			return
		}
		sleep(ctx, backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// notFoundPatience is how long a report answered "not found" is retried.
const notFoundPatience = 30 * time.Second

func (a *Agent) reportAsync(ctx context.Context, allocID string, u api.AllocStatusUpdate) {
	a.taskWG.Add(1)
	go func() { defer a.taskWG.Done(); a.report(ctx, allocID, u) }()
}

// stopAll stops every task and waits for their final reports.
func (a *Agent) stopAll() {
	a.mu.Lock()
	for _, t := range a.tasks {
		if !t.finished() {
			t.stop("the agent is shutting down")
		}
	}
	a.mu.Unlock()
	a.taskWG.Wait()
}

func logPath(dir, stream string) string { return filepath.Join(dir, "logs", stream+".log") }
