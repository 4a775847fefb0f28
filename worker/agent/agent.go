package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/netlimit"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/driver"
	"github.com/ark-sched/ark/worker/inventory"
)

// Config configures an agent.
type Config struct {
	// Name is the node's name, unique in the cluster.
	Name string
	// Servers are the servers' HTTP addresses.
	Servers []string
	// DataDir holds the node ID and the allocations' directories and logs.
	DataDir string
	// FakeGPUs, when set, replaces GPU discovery ("4xH200:141Gi").
	FakeGPUs string
	// Fabric labels the node's network domain (rack, RDMA leaf switch);
	// multi-node gangs prefer nodes of one fabric.
	Fabric string
	// MockNVML, when set, discovers GPUs through go-nvml's mock of a
	// whole machine ("dgxh200") instead of the real NVML.
	MockNVML string
	// Address is what other nodes use to reach this one (MASTER_ADDR).
	// Empty picks 127.0.0.1 when the servers are on loopback, else the
	// first non-loopback IPv4 address.
	Address string
	// HTTPAddr is where the agent serves logs; empty is Address:0.
	HTTPAddr string
	// MetricsAddr, when set, is a plain-HTTP listener serving GET /metrics
	// alone, every family included, without a token: for a Prometheus on
	// a private network (on HTTPAddr, with tokens on, only the servers'
	// credential reads the families that name jobs).
	MetricsAddr string
	// StopGrace is how long a stopped task gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// KeepTasksOnExit leaves the tasks running when the agent shuts down
	// cleanly, for its next run on the same data dir to re-attach to, as
	// after a crash: restarting an agent (an upgrade, a new flag) then
	// neither stops nor fails its jobs. Unset, a clean shutdown stops
	// every task (ark dev, or a node leaving for good).
	KeepTasksOnExit bool
	// Token is the agent token (role agent), when the servers require
	// tokens. It only registers a new node: once registered, the agent
	// uses its node secret (identity.go) and needs Token again only if
	// the servers forget the node.
	Token string
	// TLS, when set, is the client config for the servers' HTTPS API
	// (pki.Identity.HTTPClient with the agent's certificate).
	TLS *tls.Config
	// ServeTLS, when set, makes the agent's own listener (task logs, for
	// the servers) HTTPS that only a server certificate of the cluster
	// gets through (pki.Identity.AgentServer). Tasks then report to the
	// agent on a loopback listener of their own.
	ServeTLS *tls.Config
	// TaskUser is the unprivileged user tasks run as (a name or uid). An
	// agent running as root defaults it to DefaultTaskUser: tasks never run
	// as root. An agent running as another user runs tasks as itself.
	TaskUser string
	// LogMaxBytes and LogKeep rotate task logs (defaults 64 MiB, 3 kept).
	LogMaxBytes int64
	LogKeep     int
	// MPSControl is the CUDA MPS control program the agent runs a daemon
	// with per GPU that holds shares (mps.go); empty looks up
	// nvidia-cuda-mps-control on PATH.
	MPSControl string
	Logger     *zap.Logger
}

// DefaultTaskUser is whom tasks run as under an agent running as root.
const DefaultTaskUser = "nobody"

// Agent runs one node.
type Agent struct {
	// reportKey keys the task tokens of task reports (auth.go).
	reportKey []byte
	cfg       Config
	log       *zap.Logger
	client    *client.Client
	// reg registers the node, with the node secret or the agent token;
	// only register uses it (one goroutine at a time).
	reg     *client.Client
	inv     *inventory.Inventory
	drivers map[string]driver.Driver
	ln      net.Listener
	// reportLn is where tasks report under ServeTLS (loopback, plain
	// HTTP: tasks hold no certificate); nil means they use ln.
	reportLn net.Listener
	// metricsLn serves /metrics alone (Config.MetricsAddr); nil: none.
	metricsLn net.Listener

	cgroups *driver.Cgroups
	mps     *mps
	met     *agentMetrics // metrics.go
	loads   loadBook      // load.go

	// regMu serialises registration: the sync and heartbeat loops may
	// both find the node forgotten, and only one re-registers it.
	regMu sync.Mutex
	// idMu guards what a registration sets, read by both loops.
	idMu   sync.Mutex
	nodeID string
	ttl    time.Duration
	regGen uint64 // registrations so far

	mu sync.Mutex
	// logsKey is what the servers present for this node's logs (identity.go).
	logsKey string
	tasks   map[string]*task // by allocation ID
	taskWG  sync.WaitGroup
}

// New discovers the node's inventory and binds the log server.
func New(cfg Config) (*Agent, error) {
	if cfg.Name == "" || cfg.DataDir == "" || len(cfg.Servers) == 0 {
		return nil, errors.New("agent: name, data dir and servers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TaskUser == "" && os.Geteuid() == 0 {
		cfg.TaskUser = DefaultTaskUser
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 10 * time.Second
	}
	cl, err := client.New(cfg.Servers...)
	if err != nil {
		return nil, err
	}
	cl.Token = cfg.Token
	reg, err := client.New(cfg.Servers...)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		cl.SetTLS(cfg.TLS)
		reg.SetTLS(cfg.TLS)
	}
	if cfg.Address == "" {
		cfg.Address = defaultAddress(cl.Addrs())
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = net.JoinHostPort(cfg.Address, "0")
	}
	// 0711: nobody but the agent lists or reads the data dir (the report
	// key, node ID and every allocation's files are the agent's, 0600);
	// search only, so that a task reaches its own work directory
	// (allocs/ID/work, 0700, its user's) by path.
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o711); err != nil {
		return nil, fmt.Errorf("restrict data dir: %w", err)
	}
	reportKey, err := loadReportKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	secret, err := readSecretFile(cfg.DataDir, nodeSecretFile)
	if err != nil {
		return nil, err
	}
	if secret != "" {
		cl.SetToken(secret)
	}
	logsKey, err := readSecretFile(cfg.DataDir, logsKeyFile)
	if err != nil {
		return nil, err
	}
	opts := inventory.Options{FakeGPUs: cfg.FakeGPUs, NodeName: cfg.Name}
	if cfg.MockNVML != "" {
		if opts.NVML, err = inventory.MockMachine(cfg.MockNVML); err != nil {
			return nil, err
		}
	}
	inv, err := inventory.Discover(opts)
	if err != nil {
		return nil, fmt.Errorf("discover inventory: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for agent http on %s: %w", cfg.HTTPAddr, err)
	}
	// Servers (a handful) and, without TLS, the node's own tasks call it:
	// no one address needs more.
	ln = netlimit.PerClient(ln, maxConnsPerClient)
	var reportLn net.Listener
	if cfg.ServeTLS != nil {
		ln = tls.NewListener(ln, cfg.ServeTLS)
		if reportLn, err = listenReports(cfg.DataDir); err != nil {
			ln.Close()
			return nil, err
		}
	}
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			if reportLn != nil {
				reportLn.Close()
			}
			return nil, fmt.Errorf("listen for agent metrics on %s: %w", cfg.MetricsAddr, err)
		}
		metricsLn = netlimit.PerClient(metricsLn, maxConnsPerClient)
	}
	log := cfg.Logger.With(zap.String("node", cfg.Name))
	if cfg.TaskUser != "" {
		log.Info("tasks run as an unprivileged user", zap.String("task_user", cfg.TaskUser))
	} else {
		log.Info("tasks run as the agent's own (unprivileged) user", zap.Int("uid", os.Geteuid()))
	}
	cg, why := driver.DetectCgroups(driver.DefaultCgroupRoot)
	if cg == nil {
		log.Warn("tasks run without CPU and memory limits", zap.String("why", why))
	} else {
		log.Info("tasks run in cgroups v2 with their CPU and memory limits")
	}
	// Each task's init confines it; what this host cannot apply is said
	// once here (each allocation's sandbox.json records what was).
	for _, m := range driver.ProbeSandbox() {
		log.Warn("task confinement incomplete", zap.String("missing", m))
	}
	a := &Agent{
		reportKey: reportKey,
		logsKey:   logsKey,
		reg:       reg,
		cgroups:   cg,
		mps:       newMPS(cfg.MPSControl, cfg.DataDir, log),
		cfg:       cfg, log: log, client: cl, inv: inv, ln: ln, reportLn: reportLn, metricsLn: metricsLn,
		drivers: map[string]driver.Driver{driver.Exec{}.Name(): driver.Exec{}, driver.Builtin{}.Name(): driver.Builtin{}},
		tasks:   map[string]*task{},
	}
	a.initMetrics(opts.NVML)
	return a, nil
}

// NodeID is the node's ID once registered.
func (a *Agent) NodeID() string {
	id, _, _ := a.identity()
	return id
}

// identity is the node's ID and heartbeat TTL as last registered, and how
// many registrations there have been.
func (a *Agent) identity() (id string, ttl time.Duration, gen uint64) {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	return a.nodeID, a.ttl, a.regGen
}

// setTTL takes the TTL a heartbeat's answer gave, unless the node has
// registered again since (gen): the registration's answer is newer.
func (a *Agent) setTTL(gen uint64, ttl time.Duration) {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	if a.regGen == gen {
		a.ttl = ttl
	}
}

// reregister registers the node again after the servers said they do not
// know it, unless another loop already did since gen (what the caller saw
// when its call failed).
func (a *Agent) reregister(ctx context.Context, gen uint64) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if _, _, now := a.identity(); now != gen {
		return nil
	}
	return a.registerLocked(ctx)
}

// Run registers the node, re-attaches to the tasks an earlier run of the
// agent left running (after a crash), and runs its loops until ctx ends. On
// a clean shutdown it stops every task it runs and reports them, unless
// KeepTasksOnExit leaves them to its next run.
func (a *Agent) Run(ctx context.Context) error {
	defer a.met.close() // after the listeners below stop
	for _, l := range a.listeners() {
		srv := newAgentHTTP(l.handler)
		go func() { _ = srv.Serve(l.ln) }()
		defer srv.Close()
	}

	if err := a.register(ctx); err != nil {
		return err
	}
	a.log.Info("node registered", zap.String("id", a.NodeID()), zap.Int("gpus", len(a.inv.GPUs)),
		zap.String("gpu_source", a.inv.Source), zap.String("logs", a.ln.Addr().String()))

	a.reattach(ctx)
	a.mps.sweep()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.heartbeatLoop(ctx) }()
	a.syncLoop(ctx)
	wg.Wait()
	if a.cfg.KeepTasksOnExit {
		a.log.Info("leaving tasks running for the agent's next run to re-attach to")
		a.taskWG.Wait() // each watch returns on ctx's end without a report
		return nil
	}
	a.stopAll()
	return nil
}

// nodeIDFile keeps the node's ID across agent restarts.
func (a *Agent) loadNodeID() (string, error) {
	path := filepath.Join(a.cfg.DataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	return "", nil
}

// register registers the node: with its node secret when it has one (a
// restart: same ID, same secret, drain and eligibility kept), else with the
// agent token as a new node, whose secret it then keeps.
func (a *Agent) register(ctx context.Context) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	return a.registerLocked(ctx)
}

func (a *Agent) registerLocked(ctx context.Context) error {
	id, err := a.loadNodeID()
	if err != nil {
		return err
	}
	secret, err := readSecretFile(a.cfg.DataDir, nodeSecretFile)
	if err != nil {
		return err
	}
	node := &api.Node{
		ID: id, Name: a.cfg.Name, Address: a.cfg.Address, AgentAddr: a.ln.Addr().String(),
		GPUs: a.inv.GPUs, RDMA: a.inv.RDMA, CPUMilli: a.inv.CPUMilli, MemoryBytes: a.inv.MemoryBytes, Fake: a.inv.Fake,
		Fabric: a.cfg.Fabric,
	}
	backoff := 200 * time.Millisecond
	for {
		tok := a.cfg.Token
		if secret != "" {
			tok = secret
		}
		a.reg.SetToken(tok)
		resp, err := a.reg.RegisterNode(ctx, node)
		if err == nil {
			return a.registered(id, secret, resp)
		}
		var ae *client.APIError
		if errors.As(err, &ae) {
			switch {
			case ae.StatusCode == http.StatusUnauthorized && secret != "" && a.cfg.Token != "":
				// The servers do not know the secret: they forgot the node
				// (a restored snapshot). It registers anew, same ID.
				a.log.Warn("the servers do not know this node's secret; registering it as a new node", zap.Error(err))
				secret = ""
				continue
			case ae.StatusCode == http.StatusBadRequest, ae.StatusCode == http.StatusUnauthorized, ae.StatusCode == http.StatusForbidden:
				return fmt.Errorf("register node: %w", err)
			}
		}
		a.log.Warn("registering node failed; retrying", zap.Error(err), zap.Duration("in", backoff))
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// registered keeps what a registration returned: the secret first (a crash
// before the ID is saved still finds the node by its secret), then the ID
// and the logs key.
func (a *Agent) registered(id, secret string, resp *api.RegisterNodeResponse) error {
	if resp.Secret != "" {
		if err := writeSecretFile(a.cfg.DataDir, nodeSecretFile, resp.Secret); err != nil {
			return err
		}
		secret = resp.Secret
	}
	if id != resp.ID {
		if err := driver.WriteFileAtomic(filepath.Join(a.cfg.DataDir, "node-id"), []byte(resp.ID+"\n")); err != nil {
			return fmt.Errorf("save node id: %w", err)
		}
	}
	if err := a.setLogsKey(resp.LogsKey); err != nil {
		return err
	}
	if secret != "" {
		a.client.SetToken(secret)
	}
	ttl := client.HeartbeatTTL(resp.HeartbeatTTL)
	a.idMu.Lock()
	a.nodeID, a.ttl = resp.ID, ttl
	a.regGen++
	a.idMu.Unlock()
	return nil
}

// heartbeatLoop beats every third of the TTL (jittered); a beat that
// failed in a way worth retrying (no answer, a 5xx: an election, a busy
// leader) is tried again after client.HeartbeatRetry, not a whole pace
// later, so a passing failure does not cost the node one of its chances.
func (a *Agent) heartbeatLoop(ctx context.Context) {
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
		resp, err := a.client.HeartbeatWithLoads(ctx, id, a.loads.all())
		switch {
		case err == nil:
			failures = 0
			a.setTTL(gen, client.HeartbeatTTL(resp.HeartbeatTTL))
		case client.IsNotFound(err):
			failures = 0
			a.log.Warn("servers do not know this node; registering again")
			if err := a.reregister(ctx, gen); err != nil && ctx.Err() == nil {
				a.log.Error("re-registering failed", zap.Error(err))
			}
		case ctx.Err() == nil:
			if client.Retryable(err) {
				failures++
			} else {
				failures = 0
			}
			a.log.Warn("heartbeat failed", zap.Error(err), zap.Int("failures", failures))
		}
	}
}

// defaultAddress picks the address peers reach this node at.
func defaultAddress(servers []string) string {
	loopback := true
	for _, s := range servers {
		host := strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			loopback = false
		}
	}
	if !loopback {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, addr := range addrs {
				if ipn, ok := addr.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
					return ipn.IP.String()
				}
			}
		}
	}
	return "127.0.0.1"
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
