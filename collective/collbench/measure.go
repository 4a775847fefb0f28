package collbench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"time"

	"github.com/ark-sched/ark/collective"
)

// Spec is what every rank of one (ranks, transport) run measures.
type Spec struct {
	Ranks     int           `json:"ranks"`
	Transport string        `json:"transport"`
	Sizes     []int         `json:"sizes"`    // message sizes in bytes (float32 elements x 4)
	PerSize   time.Duration `json:"per_size"` // timed budget per size
	TuneMax   int           `json:"tune_max"` // tuning pass over sizes up to this (0: none)
	P2P       bool          `json:"p2p"`      // point-to-point stream (2 ranks)
	RTT       bool          `json:"rtt"`      // raw TCP ping-pong (2 ranks)
	Overlap   bool          `json:"overlap"`  // compute+communicate loop (2 ranks)
	Bucket    int           `json:"bucket"`   // overlap bucket bytes
	Channels  int           `json:"channels"` // 0: library default
	Chunk     int           `json:"chunk"`    // 0: library default
	Algo      string        `json:"algo"`     // "" or auto: library choice
	Timeout   time.Duration `json:"timeout"`
}

// RankResult is rank 0's report of one run.
type RankResult struct {
	Rows         []Row    `json:"rows"`
	Tuning       []Tuning `json:"tuning,omitempty"`
	Crossover    int      `json:"crossover_bytes,omitempty"`
	P2PGBps      float64  `json:"p2p_gbps,omitempty"`
	P2PBidirGBps float64  `json:"p2p_bidir_gbps,omitempty"`
	// Headline is the all-reduce of the largest size timed interleaved with
	// the point-to-point streams (2 ranks).
	Headline *Row     `json:"headline,omitempty"`
	RTTus    float64  `json:"tcp_rtt_us,omitempty"`
	SmallUS  float64  `json:"small_latency_us,omitempty"` // 8-byte all-reduce, interleaved with the RTT
	Overlap  *Overlap `json:"overlap,omitempty"`
}

// Row is one message size, as nccl-tests prints it.
type Row struct {
	Ranks     int     `json:"ranks"`
	Transport string  `json:"transport"`
	Bytes     int     `json:"bytes"`
	Count     int     `json:"count"`
	TimeUS    float64 `json:"time_us"`
	AlgBW     float64 `json:"algbw_gbps"`
	BusBW     float64 `json:"busbw_gbps"`
	P2P       float64 `json:"p2p_gbps"`
	BusFrac   float64 `json:"busbw_frac_p2p"`
	P2PBidir  float64 `json:"p2p_bidir_gbps"`
	BidirFrac float64 `json:"busbw_frac_p2p_bidir"`
	Algo      string  `json:"algo"`
	Iters     int     `json:"iters"`
}

// Tuning is one size of the tuning pass: both algorithms forced.
type Tuning struct {
	Bytes  int     `json:"bytes"`
	RDus   float64 `json:"rd_us"`
	RingUS float64 `json:"ring_us"`
}

// Overlap is the compute+communicate loop's outcome.
type Overlap struct {
	Transport   string  `json:"transport"`
	Buckets     int     `json:"buckets"`
	BucketBytes int     `json:"bucket_bytes"`
	CommMS      float64 `json:"comm_ms"`    // all-reduces alone
	ComputeMS   float64 `json:"compute_ms"` // compute alone
	BothMS      float64 `json:"both_ms"`    // overlapped loop
	Efficiency  float64 `json:"efficiency"` // share of comm hidden (device-style compute)
	CPUCompute  float64 `json:"compute_cpu_ms"`
	CPUBoth     float64 `json:"both_cpu_ms"`
	CPUEff      float64 `json:"efficiency_cpu"` // same loop with CPU compute
}

func options(s Spec) collective.Options {
	return collective.Options{
		TransportName: s.Transport,
		Channels:      s.Channels,
		ChunkBytes:    s.Chunk,
		Algo:          s.Algo,
		Timeout:       s.Timeout,
	}
}

// RunRank is what every rank executes; rank 0's result is the run's.
func RunRank(ctx context.Context, c *collective.Communicator, s Spec, log io.Writer) (*RankResult, error) {
	n := c.Size()
	res := &RankResult{}
	maxBytes := 0
	for _, b := range s.Sizes {
		maxBytes = max(maxBytes, b)
	}
	maxBytes = max(maxBytes, s.Bucket)
	buf := make([]float32, max(maxBytes/4, 1024))
	if err := verify(ctx, c, buf[:1001]); err != nil {
		return nil, err
	}
	for _, size := range s.Sizes {
		t, iters, algo, err := timeAllReduce(ctx, c, buf[:max(size/4, 1)], s.PerSize)
		if err != nil {
			return nil, fmt.Errorf("all-reduce %d bytes: %w", size, err)
		}
		bytes := max(size/4, 1) * 4
		alg := float64(bytes) / t.Seconds() / 1e9
		res.Rows = append(res.Rows, Row{
			Ranks: n, Transport: s.Transport, Bytes: bytes, Count: bytes / 4,
			TimeUS: us(t), AlgBW: alg, BusBW: alg * 2 * float64(n-1) / float64(n), Algo: algo, Iters: iters,
		})
		if c.Rank() == 0 && log != nil {
			fmt.Fprintf(log, "  %d ranks %s %10d B  %9.1f us  %s\n", n, s.Transport, bytes, us(t), algo)
		}
	}
	if s.TuneMax > 0 {
		if err := tune(ctx, c, s, buf, res); err != nil {
			return nil, err
		}
	}
	if s.P2P && n == 2 {
		big := buf[:maxBytes/4]
		ar, uni, bidir, err := p2p(ctx, c, big, 2*s.PerSize)
		if err != nil {
			return nil, fmt.Errorf("point-to-point stream: %w", err)
		}
		res.P2PGBps, res.P2PBidirGBps = uni, bidir
		alg := float64(len(big)*4) / ar.Seconds() / 1e9
		res.Headline = &Row{Ranks: n, Transport: s.Transport, Bytes: len(big) * 4, Count: len(big),
			TimeUS: us(ar), AlgBW: alg, BusBW: alg, Algo: "ring"}
	}
	if s.RTT && n >= 2 {
		rtt, small, err := tcpRTT(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("tcp round trip: %w", err)
		}
		res.RTTus, res.SmallUS = rtt, small
	}
	if s.Overlap && n >= 2 {
		ov, err := overlap(ctx, c, s.Bucket)
		if err != nil {
			return nil, fmt.Errorf("overlap: %w", err)
		}
		ov.Transport = s.Transport
		res.Overlap = ov
	}
	return res, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// verify checks a sum all-reduce before anything is timed.
func verify(ctx context.Context, c *collective.Communicator, b []float32) error {
	for i := range b {
		b[i] = float32(c.Rank() + 1 + i%3)
	}
	if err := c.AllReduce(ctx, collective.Float32s(b), collective.Sum); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	n := c.Size()
	for i, v := range b {
		if want := float32(n*(n+1)/2 + n*(i%3)); v != want {
			return fmt.Errorf("verify: element %d = %v, want %v", i, v, want)
		}
	}
	return nil
}

// agree makes every rank use rank 0's value.
func agree(ctx context.Context, c *collective.Communicator, v float32) (float32, error) {
	b := []float32{v}
	err := c.Broadcast(ctx, collective.Float32s(b), 0)
	return b[0], err
}

// slowest returns the largest of every rank's v.
func slowest(ctx context.Context, c *collective.Communicator, v float32) (float32, error) {
	b := []float32{v}
	err := c.AllReduce(ctx, collective.Float32s(b), collective.Max)
	return b[0], err
}

// trials is how many timed loops each figure takes the best of: the
// machines this runs on are shared, and the best of a few averages is the
// figure least disturbed by neighbours. Every figure is treated alike.
const trials = 3

// timeLoop warms fn up, agrees with the other ranks on an iteration count
// filling budget, and returns the best over trials of the slowest rank's mean
// time per call.
func timeLoop(ctx context.Context, c *collective.Communicator, budget time.Duration, fn func() error) (time.Duration, int, error) {
	iters, err := calibrateLoop(ctx, c, budget/trials, fn)
	if err != nil {
		return 0, 0, err
	}
	best := time.Duration(math.MaxInt64)
	for range trials {
		t, err := trial(ctx, c, iters, fn)
		if err != nil {
			return 0, 0, err
		}
		best = min(best, t)
	}
	return best, iters, nil
}

// calibrateLoop runs fn a few times and returns rank 0's count of calls
// that fill budget.
func calibrateLoop(ctx context.Context, c *collective.Communicator, budget time.Duration, fn func() error) (int, error) {
	if err := fn(); err != nil {
		return 0, err
	}
	start := time.Now()
	const probe = 3
	for range probe {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	est := time.Since(start) / probe
	iters := int(min(max(float64(budget)/float64(max(est, time.Microsecond)), 2), 20000))
	f, err := agree(ctx, c, float32(iters))
	return int(f), err
}

// trial is one timed loop: the slowest rank's mean time per call.
func trial(ctx context.Context, c *collective.Communicator, iters int, fn func() error) (time.Duration, error) {
	if err := c.Barrier(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	for range iters {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	mean := time.Since(start) / time.Duration(iters)
	worst, err := slowest(ctx, c, float32(us(mean)))
	return time.Duration(float64(worst) * 1e3), err
}

// timeAllReduce times an in-place float32 sum all-reduce of b.
func timeAllReduce(ctx context.Context, c *collective.Communicator, b []float32, budget time.Duration) (time.Duration, int, string, error) {
	h := c.AllReduceAsync(ctx, collective.Float32s(b), collective.Sum)
	if err := h.Wait(); err != nil {
		return 0, 0, "", err
	}
	algo := h.Algo()
	t, iters, err := timeLoop(ctx, c, budget, func() error {
		return c.AllReduce(ctx, collective.Float32s(b), collective.Sum)
	})
	return t, iters, algo, err
}

// tune times both algorithms on the small sizes and finds the crossover.
func tune(ctx context.Context, c *collective.Communicator, s Spec, buf []float32, res *RankResult) error {
	defer c.SetTuning(collective.AlgoAuto, 0)
	for _, size := range s.Sizes {
		if size > s.TuneMax {
			continue
		}
		var tu Tuning
		tu.Bytes = max(size/4, 1) * 4
		for _, algo := range []string{collective.AlgoRD, collective.AlgoRing} {
			if err := c.SetTuning(algo, 0); err != nil {
				return err
			}
			t, _, _, err := timeAllReduce(ctx, c, buf[:max(size/4, 1)], s.PerSize/2)
			if err != nil {
				return fmt.Errorf("tuning %s %d bytes: %w", algo, size, err)
			}
			if algo == collective.AlgoRD {
				tu.RDus = us(t)
			} else {
				tu.RingUS = us(t)
			}
		}
		res.Tuning = append(res.Tuning, tu)
	}
	// The crossover is the first size from which the ring stays faster.
	res.Crossover = 0
	for i := len(res.Tuning) - 1; i >= 0; i-- {
		if res.Tuning[i].RingUS >= res.Tuning[i].RDus {
			if i+1 < len(res.Tuning) {
				res.Crossover = res.Tuning[i+1].Bytes
			} else {
				res.Crossover = -1 // rd faster throughout
			}
			break
		}
	}
	return nil
}

// p2p measures the link's limit over the same transport and channels:
// len(b)*4 bytes streamed from rank 0 to rank 1 (one way), and half as much
// each way at once (per-direction rate when both directions are busy, as in
// an all-reduce). The all-reduce of the same buffer is timed in the same
// rounds, interleaved with them, so a busy neighbour on a shared machine
// disturbs all three alike; each figure is its best round. Two ranks only.
func p2p(ctx context.Context, c *collective.Communicator, b []float32, budget time.Duration) (ar time.Duration, uni, bidir float64, err error) {
	peer := 1 - c.Rank()
	h := len(b) / 2
	out, in := b[:h], b[h:2*h]
	fns := []func() error{
		func() error { return c.AllReduce(ctx, collective.Float32s(b), collective.Sum) },
		func() error {
			if c.Rank() == 0 {
				return c.Send(ctx, collective.Float32s(b), peer)
			}
			return c.Recv(ctx, collective.Float32s(b), peer)
		},
		func() error { return c.SendRecv(ctx, collective.Float32s(out), collective.Float32s(in), peer) },
	}
	const rounds = 5
	iters := make([]int, len(fns))
	best := make([]time.Duration, len(fns))
	for i, fn := range fns {
		if iters[i], err = calibrateLoop(ctx, c, budget/rounds, fn); err != nil {
			return 0, 0, 0, err
		}
		best[i] = time.Duration(math.MaxInt64)
	}
	for range rounds {
		for i, fn := range fns {
			t, err := trial(ctx, c, iters[i], fn)
			if err != nil {
				return 0, 0, 0, err
			}
			best[i] = min(best[i], t)
		}
	}
	return best[0], float64(len(b)*4) / best[1].Seconds() / 1e9, float64(h*4) / best[2].Seconds() / 1e9, nil
}

// tcpRTT measures a plain TCP round trip (8-byte ping-pong between ranks 0
// and 1 over a fresh loopback socket, TCP_NODELAY as Go sets it) and the
// 8-byte all-reduce, interleaved in rounds so both see the same load on a
// shared machine; each is the best round's mean.
func tcpRTT(ctx context.Context, c *collective.Communicator) (rtt, small float64, err error) {
	var ln net.Listener
	port := float32(0)
	if c.Rank() == 0 {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return 0, 0, err
		}
		defer ln.Close()
		port = float32(ln.Addr().(*net.TCPAddr).Port)
	}
	p, err := agree(ctx, c, port)
	if err != nil {
		return 0, 0, err
	}
	var conn net.Conn
	switch c.Rank() {
	case 0:
		conn, err = ln.Accept()
	case 1:
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", int(p)))
	}
	if err != nil {
		return 0, 0, err
	}
	if conn != nil {
		defer conn.Close()
	}
	pingPong := func(iters int) error {
		b := make([]byte, 8)
		for range iters {
			switch c.Rank() {
			case 0:
				if _, err := conn.Write(b); err != nil {
					return err
				}
				if _, err := io.ReadFull(conn, b); err != nil {
					return err
				}
			case 1:
				if _, err := io.ReadFull(conn, b); err != nil {
					return err
				}
				if _, err := conn.Write(b); err != nil {
					return err
				}
			}
		}
		return nil
	}
	small8 := make([]float32, 2)
	const rounds, iters = 5, 1000
	bestRTT, bestAR := math.Inf(1), math.Inf(1)
	if err := pingPong(100); err != nil { // warm-up
		return 0, 0, err
	}
	for range rounds {
		if err := c.Barrier(ctx); err != nil {
			return 0, 0, err
		}
		t := time.Now()
		if err := pingPong(iters); err != nil {
			return 0, 0, err
		}
		bestRTT = math.Min(bestRTT, us(time.Since(t))/iters)
		ar, err := trial(ctx, c, iters, func() error {
			return c.AllReduce(ctx, collective.Float32s(small8), collective.Sum)
		})
		if err != nil {
			return 0, 0, err
		}
		bestAR = math.Min(bestAR, us(ar))
	}
	return bestRTT, bestAR, c.Barrier(ctx)
}

// overlap measures a trainer-like loop: all-reduce bucket k asynchronously
// while computing the next step, then wait. Compute per step is set to 1.25x
// the measured all-reduce time of one bucket (a compute-bound step, where
// perfect overlap hides all communication). Efficiency is the share of the
// all-reduce time that disappeared: (compute + comm - both) / comm.
//
// Two kinds of compute: "device" sleeps, as the host CPU does while a GPU
// computes (the deployment this library targets); "cpu" runs float32 math on
// the host, competing for cores with the progress engine.
func overlap(ctx context.Context, c *collective.Communicator, bucket int) (*Overlap, error) {
	const K = 8
	bufs := make([][]float32, K)
	for k := range bufs {
		bufs[k] = make([]float32, bucket/4)
	}
	ov := &Overlap{Buckets: K, BucketBytes: bucket}
	sync := func() error { return c.Barrier(ctx) }
	// Communication alone.
	for _, b := range bufs[:2] { // warm-up
		if err := c.AllReduce(ctx, collective.Float32s(b), collective.Sum); err != nil {
			return nil, err
		}
	}
	if err := sync(); err != nil {
		return nil, err
	}
	t := time.Now()
	for _, b := range bufs {
		if err := c.AllReduce(ctx, collective.Float32s(b), collective.Sum); err != nil {
			return nil, err
		}
	}
	comm := time.Since(t)
	step0, err := agree(ctx, c, float32(comm.Seconds()/K*1.25))
	if err != nil {
		return nil, err
	}
	step := time.Duration(float64(step0) * 1e9)
	loop := func(compute func()) (time.Duration, time.Duration, error) {
		if err := sync(); err != nil {
			return 0, 0, err
		}
		t := time.Now()
		for range K {
			compute()
		}
		alone := time.Since(t)
		if err := sync(); err != nil {
			return 0, 0, err
		}
		t = time.Now()
		for _, b := range bufs {
			h := c.AllReduceAsync(ctx, collective.Float32s(b), collective.Sum)
			compute()
			if err := h.Wait(); err != nil {
				return 0, 0, err
			}
		}
		return alone, time.Since(t), nil
	}
	device := func() { time.Sleep(step) }
	comp, both, err := loop(device)
	if err != nil {
		return nil, err
	}
	work := calibrate(step)
	cpuComp, cpuBoth, err := loop(work)
	if err != nil {
		return nil, err
	}
	eff := func(comp, both time.Duration) float64 {
		e := (comp + comm - both).Seconds() / comm.Seconds()
		return math.Max(0, math.Min(1, e))
	}
	ov.CommMS, ov.ComputeMS, ov.BothMS = comm.Seconds()*1e3, comp.Seconds()*1e3, both.Seconds()*1e3
	ov.Efficiency = eff(comp, both)
	ov.CPUCompute, ov.CPUBoth = cpuComp.Seconds()*1e3, cpuBoth.Seconds()*1e3
	ov.CPUEff = eff(cpuComp, cpuBoth)
	return ov, sync()
}

// calibrate returns a CPU kernel (a float32 axpy sweep) that takes about d
// on this core when run alone.
func calibrate(d time.Duration) func() {
	x, y := make([]float32, 1<<16), make([]float32, 1<<16)
	pass := func() {
		for i := range y {
			y[i] = y[i]*0.999 + x[i]
		}
	}
	t := time.Now()
	const probe = 20
	for range probe {
		pass()
	}
	per := time.Since(t) / probe
	reps := max(int(d/max(per, time.Nanosecond)), 1)
	return func() {
		for range reps {
			pass()
		}
	}
}
