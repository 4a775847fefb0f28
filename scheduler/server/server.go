package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/audit"
	"github.com/ark-sched/ark/internal/netlimit"
	"github.com/ark-sched/ark/internal/pki"
	"github.com/ark-sched/ark/scheduler/cluster"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
)

// Config configures a server.
type Config struct {
	Name     string
	DataDir  string
	HTTPAddr string
	RaftAddr string
	// HTTPAdvertise and RaftAdvertise, when set, are the addresses other
	// servers are told for this one's API and Raft (host:port; the host
	// may be a DNS name, looked up at each dial): a stable name keeps a
	// server's identity when it comes back on another IP (a StatefulSet
	// pod rescheduled). Empty: HTTPAddr as bound, RaftAddr as resolved.
	HTTPAdvertise string
	RaftAdvertise string
	// Bootstrap makes a server with no state a single-voter cluster.
	Bootstrap bool
	// BootstrapExpect > 1 forms a new cluster once that many servers
	// (this one included) have found each other through Join.
	BootstrapExpect int
	// Join are HTTP addresses of other servers: peers of a cluster being
	// formed, or members of a running cluster to join.
	Join []string
	// Queues are the configured queues (LoadQueues); a queue not listed
	// has weight 1 and no quota.
	Queues map[string]placement.Queue
	// NoPreemption stops pending jobs from evicting lower-priority (or
	// borrowed) work; NoBackfill stops holding nodes for the job at the
	// head of the queue.
	NoPreemption bool
	NoBackfill   bool
	// PreemptMinRuntime is how long an allocation runs before it may be
	// preempted (anti-churn); see DefaultPreemptMinRuntime.
	PreemptMinRuntime time.Duration
	// QueueOrder is the order of a queue's pending jobs (sched.Orders;
	// sched.DefaultOrder when empty), and QueueAgeAfter (the order's
	// default when 0) and QueueAgeTiers their aging (sched.Config).
	QueueOrder    string
	QueueAgeAfter time.Duration
	QueueAgeTiers bool
	// JobGCThreshold is how long finished jobs are kept before the leader
	// forgets them with their allocations (0 keeps them forever).
	JobGCThreshold time.Duration
	// ACL, when set, requires a token on every request (LoadTokens);
	// nil leaves the API open (dev mode).
	ACL *ACL
	// TLS, when set, serves the API over HTTPS and runs Raft over mutual
	// TLS with this identity (a server certificate of the cluster CA);
	// nil is plain HTTP and TCP.
	TLS *pki.Identity
	// InsecureRaft lets Raft listen without TLS on a non-loopback address.
	InsecureRaft bool
	// Limits bound what one client may hold or ask (connections, request
	// rate, slow bodies, unfinished jobs per namespace); nil is
	// DefaultLimits.
	Limits *Limits
	// AuditPath is the audit log's file (hash-chained JSON lines, see
	// internal/audit); empty is DATA-DIR/audit.log.
	AuditPath string
	// MetricsAddr, when set, is a second listener that serves GET /metrics
	// alone, without a token (for a scraper on a private network); the API
	// address serves /metrics too, behind tokens when they are on.
	MetricsAddr string
	// EnableDebug serves Go's profiler under /debug/pprof/.
	EnableDebug bool
	// RaftDefaults turns off Ark's write batching (group commit) for
	// comparison: hashicorp/raft's own defaults.
	RaftDefaults bool
	// Raft snapshot thresholds; zero takes the defaults.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// HeartbeatTTL is how long a node may stay silent before it is marked
	// down. Agents heartbeat at a third of it.
	HeartbeatTTL time.Duration
	// MaxHeartbeatsPerSecond bounds the heartbeats the leader takes: the
	// TTL handed to nodes grows past HeartbeatTTL to 3 x nodes / this
	// (heartbeat.go). Zero takes DefaultMaxHeartbeatsPerSecond; negative
	// keeps HeartbeatTTL at any size.
	MaxHeartbeatsPerSecond float64
	// ClusterKey, when set, wraps the namespaces' checkpoint data keys
	// (keys.go); every server of a cluster needs the same. Nil: checkpoints
	// are not encrypted.
	ClusterKey *ClusterKey
	// CheckpointStore is the URI under which jobs' checkpoints go
	// (file:///path or s3://bucket/prefix).
	CheckpointStore string
	// Raft timeouts for tests; zero takes cluster's LAN defaults.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	// RaftMultiplier scales the Raft timeouts (--raft-multiplier; 0 is 1):
	// cluster.Config.Multiplier.
	RaftMultiplier int
	// RPCHoldTimeout is how long a follower holds a write (or a
	// consistent read) while no leader is known, or while the leader it
	// knows refuses connections, before answering 503 (forward.go). Zero
	// answers at once.
	RPCHoldTimeout time.Duration
	Logger         *zap.Logger
}

// DefaultPreemptMinRuntime is the default --preemption-min-runtime. With
// the default queue order priority acts through preemption alone, and on
// the openb over-time simulation 10 minutes let it evict 487-780 times a
// run and lose 83-121 GPU-hours; 30 minutes, 35-87 times and 2.2-7.9
// GPU-hours, at the same waits (bench/README.md). No floor at all evicted
// the same best-effort work again and again.
const DefaultPreemptMinRuntime = 30 * time.Minute

// DefaultRPCHoldTimeout is the default --rpc-hold-timeout: long enough for
// an election at --raft-multiplier 1 to 4 (followers notice a dead leader
// in 0.5-1 s times the multiplier, then vote), as Nomad's 5 s.
const DefaultRPCHoldTimeout = 5 * time.Second

// DefaultHeartbeatTTL is the default node heartbeat TTL.
const DefaultHeartbeatTTL = 10 * time.Second

// DefaultMaxHeartbeatsPerSecond keeps the TTL at 10 s up to 1,666 nodes
// and makes it 60 s at 10,000: a 2-core leader under submissions took
// about 640 heartbeats a second (bench/README.md, cluster at scale).
const DefaultMaxHeartbeatsPerSecond = 500

// Server is one Ark server.
type Server struct {
	// registrations groups concurrent job submissions into Raft
	// entries (submit_batch.go).
	registrations *registerBatcher
	// jobSuffix makes the random part of a new job's ID (a test picks
	// colliding ones).
	jobSuffix func() string

	cfg   Config
	log   *zap.Logger
	fsm   *state.FSM
	store *state.Store
	raft  *cluster.Node
	hb    *heartbeats
	acl   *ACL
	tls   *tlsSetup
	lim   Limits
	rate  *rateLimiter
	audit *audit.Log
	met   *serverMetrics
	svc   serviceProxy // services' stable endpoints (services.go)
	loads loadTable    // replicas' loads, for the autoscaler (autoscale.go)

	svcRate *rateLimiter // each namespace's bucket of service calls (services_ratelimit.go)

	ln      net.Listener
	httpSrv *http.Server
	// The metrics listener (metrics_http.go), when Config.MetricsAddr is set.
	metricsLn       net.Listener
	metricsSrv      *http.Server
	stopLeaderWatch func()

	peersMu sync.Mutex
	peers   map[string]bool // HTTP addresses heard of while forming
	servers atomic.Value    // map[string]api.Server found at bootstrap

	// bootIndex is the last index in the Raft log when the server opened;
	// reads wait until it is applied. barrierDone is set once this server,
	// as leader, has applied everything committed before it led.
	bootIndex   uint64
	barrierDone atomic.Bool

	mu        sync.Mutex
	leaderCtx context.CancelFunc
	leaderWG  sync.WaitGroup
	closeOnce sync.Once
}

// New opens the server's Raft state and binds its HTTP address. It serves
// nothing until Run.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.HeartbeatTTL == 0 {
		cfg.HeartbeatTTL = DefaultHeartbeatTTL
	}
	if cfg.MaxHeartbeatsPerSecond == 0 {
		cfg.MaxHeartbeatsPerSecond = DefaultMaxHeartbeatsPerSecond
	}
	if cfg.CheckpointStore == "" {
		abs, err := filepath.Abs(filepath.Join(cfg.DataDir, "checkpoints"))
		if err != nil {
			return nil, err
		}
		cfg.CheckpointStore = "file://" + abs
	}
	log := cfg.Logger.With(zap.String("server", cfg.Name))
	tlsSet, err := newTLSSetup(cfg.TLS)
	if err != nil {
		return nil, err
	}
	if cfg.HTTPAdvertise != "" {
		if _, err := cluster.ParseAdvertise(cfg.HTTPAdvertise); err != nil {
			return nil, fmt.Errorf("--http-advertise: %w", err)
		}
	}
	fsm := state.NewFSM(log)
	met := newServerMetrics()
	node, err := cluster.Open(cluster.Config{
		Name: cfg.Name, DataDir: filepath.Join(cfg.DataDir, "raft"), RaftAddr: cfg.RaftAddr, RaftAdvertise: cfg.RaftAdvertise,
		Bootstrap: cfg.Bootstrap, HeartbeatTimeout: cfg.RaftHeartbeatTimeout,
		ElectionTimeout: cfg.RaftElectionTimeout, Multiplier: cfg.RaftMultiplier, SnapshotThreshold: cfg.SnapshotThreshold,
		SnapshotInterval: cfg.SnapshotInterval, Untuned: cfg.RaftDefaults, Logger: log,
		TLS: tlsSet.raft, InsecureRaft: cfg.InsecureRaft, APIAddr: cfg.HTTPAddr,
	}, timedFSM{fsm, met.fsmApply})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("listen for http on %s: %w", cfg.HTTPAddr, err)
	}
	lim := DefaultLimits
	if cfg.Limits != nil {
		lim = *cfg.Limits
	}
	ln = netlimit.PerClient(ln, lim.MaxConnsPerClient) // counted before the TLS handshake, which costs
	if tlsSet.http != nil {
		ln = tls.NewListener(ln, tlsSet.http)
	}
	s := &Server{cfg: cfg, log: log, fsm: fsm, store: fsm.Store(), raft: node, ln: ln, peers: map[string]bool{}, bootIndex: node.LastIndex(), acl: cfg.ACL, tls: tlsSet, lim: lim, rate: newRateLimiter(lim.TenantRate, lim.TenantBurst), met: met}
	s.svcRate = newRateLimiter(lim.ServiceRate, lim.ServiceBurst)
	s.registrations = &registerBatcher{apply: s.applyEntry}
	s.jobSuffix = func() string { return randomSuffix(3) }
	if cfg.AuditPath == "" {
		cfg.AuditPath = filepath.Join(cfg.DataDir, "audit.log")
		s.cfg.AuditPath = cfg.AuditPath
	}
	if s.audit, err = openAudit(cfg.AuditPath, log); err != nil {
		ln.Close()
		node.Close()
		return nil, err
	}
	s.hb = newHeartbeats(cfg.HeartbeatTTL, cfg.MaxHeartbeatsPerSecond, s.markNodeDown, log)
	if err := s.registerMetrics(); err != nil {
		s.audit.Close()
		ln.Close()
		node.Close()
		return nil, err
	}
	s.httpSrv = &http.Server{
		Handler:           s.instrumentAPI(withDeadlines(lim, s.requireCerts(s.routes()))),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       lim.IdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return s, nil
}

// HTTPAddr is the address the API listens on.
func (s *Server) HTTPAddr() string { return s.ln.Addr().String() }

// advertisedHTTP is the API address other servers are told: the
// configured advertise address, else the bound one.
func (s *Server) advertisedHTTP() string {
	if s.cfg.HTTPAdvertise != "" {
		return s.cfg.HTTPAdvertise
	}
	return s.HTTPAddr()
}

// Store gives read access to the state (for in-process tests and dev mode).
func (s *Server) Store() *state.Store { return s.store }

// IsLeader reports whether this server leads the cluster.
func (s *Server) IsLeader() bool { return s.raft.IsLeader() }

// Run serves the API and runs the leader's loops while this server leads,
// until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if err := s.httpSrv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
		close(errc)
	}()
	go s.serveMetrics()
	s.log.Info("server started", zap.String("http", s.HTTPAddr()), zap.String("raft", s.cfg.RaftAddr))
	if s.acl == nil {
		s.log.Warn("no token file: the API is open to anyone who can reach it (start with --token-file to require tokens)")
	} else if n := s.acl.namespaceTokens(); n > 0 {
		s.log.Warn("the token file has namespace tokens: they are bound to their namespace only, not to queues, priorities, limits or storage prefixes; give tenants ACL tokens with policies (ark acl token create --policy)", zap.Int("namespace_tokens", n))
	}
	s.logKeyMode()
	var formWG sync.WaitGroup
	defer formWG.Wait()
	if !s.raft.HasState() && (s.cfg.BootstrapExpect > 1 || len(s.cfg.Join) > 0) {
		formWG.Add(1)
		go func() { defer formWG.Done(); s.form(ctx) }()
	} else if s.raft.HasState() {
		formWG.Add(1)
		go func() { defer formWG.Done(); s.readdress(ctx) }()
	}
	if s.raft.IsLeader() {
		s.startLeader(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return s.shutdown()
		case err := <-errc:
			if serr := s.shutdown(); err == nil {
				err = serr
			}
			return err
		case <-s.fsm.Halted():
			// A committed entry this version cannot apply: serving on
			// would answer from a state the other servers do not have.
			err := s.fsm.Fatal()
			s.log.Error("stopping: the state machine halted", zap.Error(err))
			_ = s.shutdown()
			return fmt.Errorf("server %s stopped: %w", s.cfg.Name, err)
		case leader := <-s.raft.LeaderCh():
			if leader {
				s.startLeader(ctx)
			} else {
				s.stopLeader()
			}
		}
	}
}

// startLeader starts the scheduling loop and the heartbeat tracker.
func (s *Server) startLeader(parent context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leaderCtx != nil {
		return
	}
	ctx, cancel := context.WithCancel(parent)
	s.leaderCtx = cancel
	s.log.Info("gained leadership; starting scheduler and heartbeat tracker")
	s.leaderWG.Add(1)
	go func() {
		defer s.leaderWG.Done()
		// Everything a previous leader committed must be applied here
		// before this server plans on it.
		if err := s.raft.Barrier(30 * time.Second); err != nil {
			s.log.Warn("leader barrier failed", zap.Error(err))
			return
		}
		s.barrierDone.Store(true)
		s.publishSelf(ctx)
		s.hb.start(ctx, s.store.Snapshot().Nodes(nil))
		done := make(chan struct{})
		go func() { defer close(done); s.runJanitor(ctx) }()
		s.leaderWG.Add(1)
		go func() { defer s.leaderWG.Done(); s.runAutoscaler(ctx) }()
		s.runScheduler(ctx)
		<-done
	}()
}

func (s *Server) stopLeader() {
	s.mu.Lock()
	cancel := s.leaderCtx
	s.leaderCtx = nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	s.log.Info("lost leadership; stopping scheduler and heartbeat tracker")
	cancel()
	s.leaderWG.Wait()
	s.hb.stop()
}

func (s *Server) shutdown() error {
	var err error
	s.closeOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.httpSrv.Shutdown(sctx)
		s.closeMetrics(sctx)
		s.stopLeader()
		err = s.raft.Close()
		_ = s.audit.Close()
	})
	return err
}

// Close stops the server without Run (used when Run was never called).
func (s *Server) Close() error {
	err := s.shutdown()
	s.ln.Close() // when Run never served on it
	return err
}

// apply encodes and commits one command.
func (s *Server) apply(ctx context.Context, t state.MessageType, req any) (any, uint64, error) {
	data, err := state.Encode(t, req)
	if err != nil {
		return nil, 0, err
	}
	return s.applyEntry(ctx, data)
}

// applyEntry commits one encoded entry.
func (s *Server) applyEntry(ctx context.Context, data []byte) (any, uint64, error) {
	start := time.Now()
	resp, idx, err := s.raft.Apply(ctx, data)
	if err == nil || idx > 0 { // committed (an FSM rejection still was)
		s.met.raftCommit.Observe(time.Since(start).Seconds())
	}
	return resp, idx, err
}
