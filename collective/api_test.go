package collective_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

func TestBF16(t *testing.T) {
	for _, tc := range []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000}, {1, 0x3f80}, {-2, 0xc000}, {3.140625, 0x4049},
		{1.00390625, 0x3f80}, // tie, rounds to even (down)
		{1.01171875, 0x3f82}, // tie, rounds to even (up)
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // overflows to +Inf when rounding
	} {
		if got := collective.ToBF16(tc.in); uint16(got) != tc.want {
			t.Errorf("ToBF16(%v) = %#04x, want %#04x", tc.in, uint16(got), tc.want)
		}
	}
	if nan := collective.ToBF16(float32(math.NaN())); nan.Float32() == nan.Float32() {
		t.Error("NaN did not stay NaN")
	}
}

func TestPartition(t *testing.T) {
	for _, tc := range []struct{ n, parts int }{{0, 3}, {1, 4}, {10, 3}, {7, 7}, {1000, 8}} {
		next := 0
		for i := range tc.parts {
			lo, hi := collective.Partition(tc.n, tc.parts, i)
			if lo != next || hi < lo || hi-lo > tc.n/tc.parts+1 {
				t.Fatalf("Partition(%d, %d, %d) = [%d, %d)", tc.n, tc.parts, i, lo, hi)
			}
			next = hi
		}
		if next != tc.n {
			t.Fatalf("Partition(%d, %d) covers %d", tc.n, tc.parts, next)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("RANK", "3")
	t.Setenv("WORLD_SIZE", "8")
	t.Setenv("MASTER_ADDR", "10.0.0.1")
	t.Setenv("MASTER_PORT", "29500")
	t.Setenv("ARK_COLL_ALGO", "ring")
	t.Setenv("ARK_COLL_CHUNK", "512K")
	t.Setenv("ARK_COLL_CHANNELS", "4")
	t.Setenv("ARK_COLL_TIMEOUT", "45s")
	o, err := collective.Options{}.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if o.Rank != 3 || o.WorldSize != 8 || o.MasterAddr != "10.0.0.1:29500" || o.Algo != "ring" ||
		o.ChunkBytes != 512<<10 || o.Channels != 4 || o.Timeout.Seconds() != 45 {
		t.Fatalf("FromEnv = %+v", o)
	}
	t.Setenv("ARK_COLL_SOCKET_IFNAME", "lo")
	if o, err = (collective.Options{}).FromEnv(); err != nil || o.TCP.Bind != "127.0.0.1" {
		t.Fatalf("ARK_COLL_SOCKET_IFNAME=lo: bind %q, %v", o.TCP.Bind, err)
	}
	t.Setenv("ARK_COLL_SOCKET_IFNAME", "")
	t.Setenv("NCCL_SOCKET_IFNAME", "nosuchnic")
	if o, err = (collective.Options{}).FromEnv(); err != nil || o.TCP.Bind != "" {
		t.Fatalf("unmatched NCCL_SOCKET_IFNAME: bind %q, %v", o.TCP.Bind, err)
	}
	t.Setenv("ARK_COLL_SOCKET_IFNAME", "nosuchnic")
	if _, err := (collective.Options{}).FromEnv(); err == nil {
		t.Fatal("unmatched ARK_COLL_SOCKET_IFNAME accepted")
	}
	t.Setenv("ARK_COLL_SOCKET_IFNAME", "")
	t.Setenv("ARK_COLL_CHUNK", "lots")
	if _, err := (collective.Options{}).FromEnv(); err == nil {
		t.Fatal("bad ARK_COLL_CHUNK accepted")
	}
}

func TestInvalid(t *testing.T) {
	for _, o := range []collective.Options{
		{WorldSize: 0},
		{Rank: 2, WorldSize: 2, MasterAddr: "x:1"},
		{WorldSize: 2, Rank: 1},
		{WorldSize: 2, Rank: 1, MasterAddr: "x:1", Algo: "magic"},
	} {
		if _, err := collective.New(context.Background(), o); !errors.Is(err, collective.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	comms := collectivetest.StartGroup(t, 2, testOptions("tcp"))
	c := comms[0]
	ctx := context.Background()
	if err := c.ReduceScatter(ctx, collective.Float32s(make([]float32, 10)), collective.Float32s(make([]float32, 4)), collective.Sum); !errors.Is(err, collective.ErrInvalid) {
		t.Errorf("ReduceScatter with a wrong share: %v", err)
	}
	if err := c.AllGather(ctx, collective.Float32s(make([]float32, 5)), collective.BFloat16s(make([]collective.BF16, 10))); !errors.Is(err, collective.ErrInvalid) {
		t.Errorf("AllGather across dtypes: %v", err)
	}
	if err := c.Broadcast(ctx, collective.Float32s(make([]float32, 5)), 2); !errors.Is(err, collective.ErrInvalid) {
		t.Errorf("Broadcast from rank 2 of 2: %v", err)
	}
	if err := c.AllReduce(ctx, collective.Float32s(make([]float32, 5)), 0); !errors.Is(err, collective.ErrInvalid) {
		t.Errorf("AllReduce with no op: %v", err)
	}
	if c.Err() != nil {
		t.Errorf("argument errors broke the communicator: %v", c.Err())
	}
}

// TestAsync issues several non-blocking operations back to back on every
// rank, then waits: they run in issue order on the progress engine.
func TestAsync(t *testing.T) {
	const n, ops, size = 3, 6, 5000
	comms := collectivetest.StartGroup(t, n, testOptions("auto"))
	bufs := make([][][]float32, n)
	errs := collectivetest.Each(comms, func(r int, c *collective.Communicator) error {
		var hs []*collective.Handle
		bufs[r] = make([][]float32, ops)
		for k := range ops {
			b := make([]float32, size+k)
			for i := range b {
				b[i] = collectivetest.Value(k, r, i)
			}
			bufs[r][k] = b
			hs = append(hs, c.AllReduceAsync(context.Background(), collective.Float32s(b), collective.Sum))
		}
		for _, h := range hs {
			if err := h.Wait(); err != nil {
				return err
			}
			if done, err := h.Test(); !done || err != nil {
				return errors.New("Test after Wait not done")
			}
		}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for r := range n {
		for k := range ops {
			for i, got := range bufs[r][k] {
				var want float32
				for q := range n {
					want += collectivetest.Value(k, q, i)
				}
				if got != want {
					t.Fatalf("rank %d op %d element %d = %v, want %v", r, k, i, got, want)
				}
			}
		}
	}
}

// TestSteadyStateAllocs: a blocking all-reduce allocates nothing per call
// in proportion to the message (only small fixed overhead, both ranks counted).
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	for _, size := range []int{16, 200_000} {
		o := testOptions("tcp")
		o.Heartbeat, o.PeerTimeout = time.Hour, 2*time.Hour // heartbeats allocate (JSON), keep them out
		comms := collectivetest.StartGroup(t, 2, o)
		b0, b1 := make([]float32, size), make([]float32, size)
		ctx := context.Background()
		const runs = 20
		start, next := make(chan struct{}), make(chan struct{})
		go func() {
			for range runs + 1 { // AllocsPerRun does one warm-up call
				<-start
				comms[1].AllReduce(ctx, collective.Float32s(b1), collective.Sum)
				next <- struct{}{}
			}
		}()
		allocs := testing.AllocsPerRun(runs, func() {
			start <- struct{}{}
			comms[0].AllReduce(ctx, collective.Float32s(b0), collective.Sum)
			<-next
		})
		if allocs > 2 {
			t.Errorf("%d floats: %.1f allocations per all-reduce (both ranks)", size, allocs)
		}
		t.Logf("%d floats: %.1f allocations per all-reduce (both ranks)", size, allocs)
	}
}

func TestPointToPoint(t *testing.T) {
	for _, transport := range []string{"tcp", "shm"} {
		comms := collectivetest.StartGroup(t, 3, testOptions(transport))
		ctx := context.Background()
		const n = 70_001
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i] = float32(i)
		}
		errs := collectivetest.Each(comms, func(r int, c *collective.Communicator) error {
			switch r {
			case 0:
				return c.Send(ctx, collective.Float32s(a), 1)
			case 1:
				return c.Recv(ctx, collective.Float32s(b), 0)
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for i := range b {
			if b[i] != float32(i) {
				t.Fatalf("%s: element %d = %v", transport, i, b[i])
			}
		}
		// Full duplex between ranks 1 and 2.
		x, y := make([]float32, n), make([]float32, n)
		gx, gy := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(i), float32(-i)
		}
		errs = collectivetest.Each(comms, func(r int, c *collective.Communicator) error {
			switch r {
			case 1:
				return c.SendRecv(ctx, collective.Float32s(x), collective.Float32s(gx), 2)
			case 2:
				return c.SendRecv(ctx, collective.Float32s(y), collective.Float32s(gy), 1)
			}
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for i := range gx {
			if gx[i] != y[i] || gy[i] != x[i] {
				t.Fatalf("%s: sendrecv element %d = %v, %v", transport, i, gx[i], gy[i])
			}
		}
		if err := comms[0].Send(ctx, collective.Float32s(a), 0); !errors.Is(err, collective.ErrInvalid) {
			t.Errorf("send to self: %v", err)
		}
	}
}

func TestEmptyBuffers(t *testing.T) {
	comms := collectivetest.StartGroup(t, 3, testOptions("auto"))
	ctx := context.Background()
	errs := collectivetest.Each(comms, func(_ int, c *collective.Communicator) error {
		for _, algo := range []string{collective.AlgoRD, collective.AlgoRing} {
			if err := c.SetTuning(algo, 0); err != nil {
				return err
			}
			if err := c.AllReduce(ctx, collective.Float32s(nil), collective.Avg); err != nil {
				return err
			}
		}
		if err := c.ReduceScatter(ctx, collective.BFloat16s(nil), collective.BFloat16s(nil), collective.Sum); err != nil {
			return err
		}
		if err := c.AllGather(ctx, collective.Float32s(nil), collective.Float32s(nil)); err != nil {
			return err
		}
		return c.Broadcast(ctx, collective.Float32s(nil), 2)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
