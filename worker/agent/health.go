package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// healthOf is the check the agent runs on an allocation: the spec's, GET
// /v1/health for a builtin inference replica, or none (not a service).
func healthOf(al *api.Allocation) *spec.Health {
	switch {
	case al.Kind != spec.KindInference:
		return nil
	case al.Task.Health != nil:
		return al.Task.Health
	case al.Task.Driver == spec.DriverBuiltin:
		return spec.BuiltinHealth()
	}
	return nil
}

// prober runs one check of one replica: on host at the check's port (the
// replica's service port when the check names none), or the check's
// command in the replica's directory with its environment.
type prober struct {
	check *spec.Health
	host  string
	port  int
	dir   string
	env   []string
	http  *http.Client
	// onBody sees each passing HTTP check's answer (its load).
	onBody func([]byte)
}

func newProber(check *spec.Health, host string, port int, dir string, env []string) *prober {
	return &prober{check: check, host: host, port: port, dir: dir, env: env,
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *prober) addr(port int) string {
	if port == 0 {
		port = p.port
	}
	return net.JoinHostPort(p.host, strconv.Itoa(port))
}

// probe runs the check once, within its timeout; nil is a pass.
func (p *prober) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.check.Timeout))
	defer cancel()
	c := p.check
	switch {
	case c.HTTP != nil:
		url := "http://" + p.addr(c.HTTP.Port) + c.HTTP.Path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := p.http.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if p.onBody != nil {
			p.onBody(body)
		}
		return nil
	case c.TCP != nil:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", p.addr(c.TCP.Port))
		if err != nil {
			return err
		}
		return conn.Close()
	case c.Exec != nil:
		cmd := exec.CommandContext(ctx, c.Exec.Command[0], c.Exec.Command[1:]...)
		cmd.Dir, cmd.Env = p.dir, p.env
		cmd.WaitDelay = time.Second // a child holding the pipes must not hold the check
		out, err := cmd.CombinedOutput()
		if err != nil {
			if len(out) > 200 {
				out = out[len(out)-200:]
			}
			return fmt.Errorf("%s: %w (%q)", c.String(), err, out)
		}
		return nil
	}
	return errors.New("health check declares no http, tcp or exec")
}

// healthLoop probes every interval until ctx ends. It calls ready(true)
// when a check passes while the replica is not ready, ready(false) at the
// first failure after that, and unhealthy once Failures checks in a row
// have failed after the replica was first ready (a replica still starting,
// loading its model, is not ready and not killed for it).
//
// wasReady starts the loop on a replica already ready (re-attached after
// an agent restart): its failures count from the first check.
func healthLoop(ctx context.Context, check *spec.Health, wasReady bool, probe func(context.Context) error, ready func(bool), unhealthy func(why string)) {
	t := time.NewTicker(time.Duration(check.Interval))
	defer t.Stop()
	isReady, everReady, fails := wasReady, wasReady, 0
	started := time.Now()
	for {
		err := probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if st := time.Duration(check.StartupTimeout); err != nil && !everReady && st > 0 && time.Since(started) >= st {
			unhealthy(fmt.Sprintf("not ready %s after it started (task.health.startupTimeout): %v", st, err))
			return
		}
		switch {
		case err == nil:
			fails = 0
			if !isReady {
				isReady, everReady = true, true
				ready(true)
			}
		case everReady:
			fails++
			if isReady {
				isReady = false
				ready(false)
			}
			if fails >= check.Failures {
				unhealthy(fmt.Sprintf("health check failed %d times in a row: %v", fails, err))
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runHealth checks a running replica until ctx ends, reporting its
// readiness and stopping it when it stays unhealthy (the servers then
// replace it, after its backoff).
//
// wasReady: the replica is re-attached and was ready.
func (a *Agent) runHealth(ctx context.Context, t *task, check *spec.Health, wasReady bool, log *zap.Logger) {
	al := t.alloc
	p := newProber(check, a.cfg.Address, al.Port, t.dir, a.taskEnv(al, t.dir))
	p.onBody = func(b []byte) {
		if l, ok := parseLoad(al.ID, b); ok {
			a.loads.put(l)
		}
		if m := parseHealthMetrics(b); m != nil {
			a.putMetrics(al.ID, m)
		}
	}
	defer a.loads.drop(al.ID)
	healthLoop(ctx, check, wasReady, p.probe, func(ok bool) {
		log.Info("replica readiness", zap.Bool("ready", ok), zap.String("check", check.String()))
		a.report(ctx, al.ID, api.AllocStatusUpdate{Status: api.AllocRunning, Ready: &ok})
	}, func(why string) {
		log.Warn("stopping an unhealthy replica", zap.String("why", why))
		t.stop(why)
	})
}
