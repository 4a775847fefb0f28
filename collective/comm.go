package collective

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Communicator connects the ranks of one job. Operations are collective:
// every rank must issue the same operations in the same order (as with NCCL
// and MPI). Issuing is safe from several goroutines, but the issue order is
// the execution order, so a program normally issues from one goroutine.
//
// Operations run on the Communicator's progress engine; the blocking forms
// wait for it, the Async forms return a *Handle at once. Buffers belong to
// the caller but must not be touched until the operation completes.
type Communicator struct {
	o     Options
	rank  int
	size  int
	coord *coordinator
	ctrl  *control

	eps       map[string]Endpoint
	inter     string   // auto: the transport between hosts besides tcp ("rdma"), "" if none
	conns     [][]Conn // [peer][channel]; nil where unused
	all       []Conn   // every open conn, once
	names     []string // transport name per peer ("rdma+tcp" when channels differ)
	fallbacks []error  // auto: connections made over tcp after their transport's check failed

	reqs    chan *request
	workers []*chanWorker
	job     ringJob
	// connDeadline is the deadline armed on every conn (engine goroutine only).
	connDeadline time.Time
	rdSend       chan rdSendJob
	rdDone       chan error
	scratch      []byte // recursive doubling receive area and ReduceScatter staging
	rsWork       []byte

	mu          sync.Mutex // guards all and workers while New fills them, and setupCancel
	setupCancel context.CancelFunc

	tuning   atomic.Pointer[tuning]
	seq      atomic.Uint64 // operations entered
	broken   atomic.Pointer[errBox]
	brokenCh chan struct{} // closed when broken is set
	current  atomic.Pointer[request]
	closeMu  sync.Mutex
	closed   bool
	stop     chan struct{}
	wg       sync.WaitGroup
	reqPool  sync.Pool
	barrierB [1]float32
}

type errBox struct{ err error }

type tuning struct {
	algo     string
	smallMax int
}

// NewFromEnv builds a Communicator from RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT and the ARK_COLL_* variables.
func NewFromEnv(ctx context.Context) (*Communicator, error) {
	o, err := Options{}.FromEnv()
	if err != nil {
		return nil, fmt.Errorf("collective options from env: %w", err)
	}
	return New(ctx, o)
}

// New runs the rendezvous, connects to the peers the algorithms need and
// starts the progress engine. It returns when every rank has joined, or an
// error when ctx or ConnectTimeout ends first. Rank 0 serves the rendezvous.
func New(ctx context.Context, o Options) (*Communicator, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Communicator{
		o: o, rank: o.Rank, size: o.WorldSize,
		eps:      map[string]Endpoint{},
		brokenCh: make(chan struct{}),
		reqs:     make(chan *request, 64),
		stop:     make(chan struct{}),
	}
	c.reqPool.New = func() any { return &request{done: make(chan struct{}, 1)} }
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	master := o.MasterAddr
	if o.Rank == 0 {
		ln := o.Listener
		if ln == nil {
			var lc net.ListenConfig
			ln, err = lc.Listen(cctx, "tcp", o.MasterAddr)
			if err != nil {
				return nil, fmt.Errorf("rendezvous listen %s: %w", o.MasterAddr, err)
			}
		}
		master = ln.Addr().String()
		c.coord = startCoordinator(ln, o)
	}
	if err := c.setup(cctx, master); err != nil {
		c.teardown(0)
		return nil, fmt.Errorf("collective rank %d/%d: %w", o.Rank, o.WorldSize, err)
	}
	if o.Tune {
		if err := c.tune(cctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("collective rank %d/%d: %w", o.Rank, o.WorldSize, err)
		}
	}
	return c, nil
}

func (c *Communicator) setup(ctx context.Context, master string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	c.setupCancel = cancel // an abort during setup stops the connects
	c.mu.Unlock()
	ct, err := dialControl(ctx, c.o, master)
	if err != nil {
		return err
	}
	c.ctrl = ct
	self := Self{Rank: c.rank, Session: ct.session, IP: ct.localIP}
	var trs []Transport
	switch {
	case c.o.Transport != nil:
		trs = []Transport{c.o.Transport}
	case c.o.TransportName == "tcp":
		trs = []Transport{&c.o.TCP}
	case c.o.TransportName == "shm":
		trs = []Transport{&c.o.Shm}
	case c.o.TransportName == "auto":
		trs = []Transport{&c.o.TCP, &c.o.Shm}
		inter, err := c.o.interHost()
		if err != nil {
			return err
		}
		if inter != nil {
			trs = append(trs, inter)
		}
	default:
		tr, err := openRegistered(c.o.TransportName)
		if err != nil {
			return err
		}
		trs = []Transport{tr}
	}
	auto := c.o.Transport == nil && c.o.TransportName == "auto"
	addrs := map[string]string{}
	for _, tr := range trs {
		ep, err := tr.Listen(ctx, self)
		if err != nil {
			if auto && tr.Name() != "tcp" {
				// No usable /dev/shm, or no RDMA port: this rank publishes
				// no address for it, so every peer picks tcp to reach it.
				continue
			}
			return fmt.Errorf("listen %s: %w", tr.Name(), err)
		}
		c.eps[tr.Name()] = ep
		addrs[tr.Name()] = ep.Addr()
		if auto && tr.Name() != "tcp" && tr.Name() != "shm" {
			c.inter = tr.Name()
		}
	}
	if err := ct.exchange(addrs); err != nil {
		return err
	}
	if c.coord != nil {
		if err := <-c.coord.errc; err != nil {
			return err
		}
	}
	ct.start(c.o.Heartbeat, c.o.PeerTimeout, c.seq.Load, c.abort)

	// Pick a transport per peer and connect to the peers the algorithms use.
	c.names = make([]string, c.size)
	for p := range c.size {
		c.names[p] = c.pickTransport(p)
	}
	c.conns = make([][]Conn, c.size)
	for p := range c.conns {
		c.conns[p] = make([]Conn, c.o.Channels)
	}
	need := c.neededConns()
	errs := make([]error, len(need))
	used := make([]string, len(need)) // transport of need[i] once connected
	var wg sync.WaitGroup
	for i, k := range need {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer, ch := k[0], k[1]
			name := c.names[peer]
			conn, err := c.connect(ctx, name, peer, ch)
			if err != nil && name == c.inter && errors.Is(err, ErrTransportUnavailable) {
				// Both ranks reached this verdict in the transport's own
				// setup, so both connect this (peer, channel) over tcp now.
				c.mu.Lock()
				c.fallbacks = append(c.fallbacks, err)
				c.mu.Unlock()
				name = "tcp"
				conn, err = c.connect(ctx, name, peer, ch)
			}
			if err != nil {
				errs[i] = err
				return
			}
			c.conns[peer][ch] = conn
			used[i] = name
		}()
	}
	wg.Wait()
	c.names = linkNames(c.names, need, used)
	c.mu.Lock()
	for p := range c.conns {
		for _, cn := range c.conns[p] {
			if cn != nil {
				c.all = append(c.all, cn)
			}
		}
	}
	c.setupCancel = nil
	c.mu.Unlock()
	if err := c.Err(); err != nil {
		return err // a peer failed while we connected
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.startEngine()
	return nil
}

// connect opens (peer, ch) over the transport name.
func (c *Communicator) connect(ctx context.Context, name string, peer, ch int) (Conn, error) {
	ep, ok := c.eps[name]
	addr := c.ctrl.peers[peer].Addrs[name]
	if !ok || addr == "" {
		return nil, fmt.Errorf("rank %d has no %s address", peer, name)
	}
	conn, err := ep.Connect(ctx, peer, addr, ch)
	if err != nil {
		return nil, fmt.Errorf("connect rank %d ch %d over %s: %w", peer, ch, name, err)
	}
	return conn, nil
}

// pickTransport chooses how to reach peer. Under auto: shm on the same
// host, the transport between hosts (rdma) where both ranks published an
// address for it, tcp otherwise. Both ranks of a pair see the same table,
// so they choose alike.
func (c *Communicator) pickTransport(peer int) string {
	if c.o.Transport != nil {
		return c.o.Transport.Name()
	}
	if c.o.TransportName != "auto" {
		return c.o.TransportName
	}
	me, them := c.ctrl.peers[c.rank], c.ctrl.peers[peer]
	if me.Host == them.Host {
		if _, ok := c.eps["shm"]; ok && them.Addrs["shm"] != "" {
			return "shm"
		}
		return "tcp"
	}
	if _, ok := c.eps[c.inter]; ok && c.inter != "" && them.Addrs[c.inter] != "" {
		return c.inter
	}
	return "tcp"
}

// linkNames is the transport name per peer after connecting: the one
// picked, unless the peer's channels ended on different transports (some
// fell back to tcp), which reads e.g. "rdma+tcp".
func linkNames(picked []string, need [][2]int, used []string) []string {
	per := make([][]string, len(picked))
	for i, k := range need {
		if u := used[i]; u != "" && !slices.Contains(per[k[0]], u) {
			per[k[0]] = append(per[k[0]], u)
		}
	}
	out := slices.Clone(picked)
	for p, us := range per {
		if len(us) > 0 {
			slices.Sort(us)
			out[p] = strings.Join(us, "+")
		}
	}
	return out
}

// neededConns lists (peer, channel) pairs: ring neighbours on every channel
// and the recursive-doubling partners on channel 0.
func (c *Communicator) neededConns() [][2]int {
	if c.size == 1 {
		return nil
	}
	seen := map[[2]int]bool{}
	var out [][2]int
	add := func(p, ch int) {
		k := [2]int{p, ch}
		if p != c.rank && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for ch := range c.o.Channels {
		add((c.rank+1)%c.size, ch)
		add((c.rank-1+c.size)%c.size, ch)
	}
	for _, p := range rdPartners(c.rank, c.size) {
		add(p, 0)
	}
	return out
}

// Rank is this rank's index.
func (c *Communicator) Rank() int { return c.rank }

// Size is the world size.
func (c *Communicator) Size() int { return c.size }

// TransportTo names the transport used to reach peer ("tcp", "shm",
// "rdma"). Under auto, a peer some of whose channels fell back from rdma to
// tcp reads "rdma+tcp".
func (c *Communicator) TransportTo(peer int) string { return c.names[peer] }

// Fallbacks lists, under auto, the connections made over tcp because their
// transport's connect-time check failed: one error per (peer, channel),
// each wrapping ErrTransportUnavailable and naming the reason. Empty when
// every connection uses the transport picked for it.
func (c *Communicator) Fallbacks() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.fallbacks)
}

// Err is the error that broke the Communicator, or nil while it is healthy.
func (c *Communicator) Err() error {
	if b := c.broken.Load(); b != nil {
		return b.err
	}
	return nil
}

// abort breaks the Communicator with err (the first error wins) and
// interrupts the operation in flight.
func (c *Communicator) abort(err *PeerError) {
	c.fail(err)
}

func (c *Communicator) fail(err error) {
	if c.broken.CompareAndSwap(nil, &errBox{err: err}) {
		close(c.brokenCh)
		c.interrupt()
	}
}

// interrupt unblocks every transport call and dependency wait.
// It leaves connDeadline stale on purpose: the communicator is broken (or
// closing) and runs no further operation.
func (c *Communicator) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.setupCancel != nil {
		c.setupCancel()
	}
	past := time.Unix(1, 0)
	for _, cn := range c.all {
		_ = cn.SetDeadline(past)
	}
	for _, w := range c.workers {
		w.poke()
	}
}

// Close stops the engine, says goodbye to the coordinator and closes every
// connection. On rank 0 it first waits (up to Timeout) for the other ranks'
// goodbyes so ranks still finishing their last operation are not aborted.
// Close is idempotent; a new Communicator can then be built with New.
func (c *Communicator) Close() error {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return nil
	}
	c.closed = true
	c.closeMu.Unlock()
	c.teardown(c.o.Timeout)
	return nil
}

func (c *Communicator) teardown(wait time.Duration) {
	c.fail(ErrClosed)
	close(c.stop)
	c.wg.Wait()
	if c.ctrl != nil {
		c.ctrl.close()
	}
	if c.coord != nil {
		c.coord.close(wait)
	}
	for _, cn := range c.all {
		_ = cn.Close()
	}
	for _, ep := range c.eps {
		_ = ep.Close()
	}
}

// crash simulates the process dying: everything closes at once, no goodbye.
func (c *Communicator) crash() {
	c.closeMu.Lock()
	c.closed = true
	c.closeMu.Unlock()
	if c.coord != nil {
		c.coord.kill()
	}
	if c.ctrl != nil {
		c.ctrl.mu.Lock()
		c.ctrl.closing = true
		c.ctrl.mu.Unlock()
		c.ctrl.cc.c.Close()
	}
	for _, cn := range c.all {
		_ = cn.Close()
	}
	c.fail(ErrClosed)
	close(c.stop)
	c.wg.Wait()
	if c.ctrl != nil {
		c.ctrl.cancel()
		c.ctrl.wg.Wait()
	}
	if c.coord != nil {
		c.coord.wg.Wait()
	}
	for _, ep := range c.eps {
		_ = ep.Close()
	}
}
