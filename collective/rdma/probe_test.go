package rdma

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

// faultyTransport is the fake NIC with dev's faults and a short probe.
func faultyTransport(dev *fakeDevice) *Transport {
	return &Transport{opener: fakeOpener{dev}, Slots: 4, SlotBytes: 16 << 10, ProbeTimeout: time.Second}
}

// probeFaults are failures injected on one side of a connection; want is
// what the reason must mention.
var probeFaults = []struct {
	name string
	dev  func() *fakeDevice
	want string
}{
	{"queue pair creation", func() *fakeDevice { return &fakeDevice{failQP: errors.New("cannot register: memlock")} }, "memlock"},
	{"RTR/RTS", func() *fakeDevice { return &fakeDevice{failConnect: errors.New("modify QP to RTR: EINVAL")} }, "RTR"},
	{"corrupted writes", func() *fakeDevice { return &fakeDevice{corrupt: true} }, "differ"},
	{"lost writes", func() *fakeDevice { return &fakeDevice{drop: true} }, "probe"},
}

// TestProbeVerdictIsSymmetric: whichever side a fault is on, both sides'
// Connect fail with collective.ErrTransportUnavailable, say why, and leave
// no queue pair behind; with no fault both connect and the stream works.
func TestProbeVerdictIsSymmetric(t *testing.T) {
	for _, f := range probeFaults {
		for faulty := range 2 {
			t.Run(fmt.Sprintf("%s on rank %d", f.name, faulty), func(t *testing.T) {
				devs := [2]*fakeDevice{{}, {}}
				devs[faulty] = f.dev()
				conns, errs := connectPair(t, devs)
				for r, err := range errs {
					if conns[r] != nil {
						conns[r].Close()
					}
					if !errors.Is(err, collective.ErrTransportUnavailable) {
						t.Fatalf("rank %d: %v, want ErrTransportUnavailable", r, err)
					}
					if !strings.Contains(err.Error(), f.want) {
						t.Errorf("rank %d: %v does not say %q", r, err, f.want)
					}
				}
				for r, d := range devs {
					if n := d.live.Load(); n != 0 {
						t.Errorf("rank %d: %d queue pairs left", r, n)
					}
				}
			})
		}
	}
	t.Run("no fault", func(t *testing.T) {
		conns, errs := connectPair(t, [2]*fakeDevice{{}, {}})
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatal(err)
		}
		defer conns[0].Close()
		defer conns[1].Close()
		// The probe left both streams at a chunk boundary of nothing:
		// what follows arrives intact.
		msg := probePattern(50_000, 9)
		go conns[1].Send(msg)
		got := make([]byte, len(msg))
		if err := conns[0].Recv(got); err != nil || firstDiff(got, msg) >= 0 {
			t.Fatalf("after the probe: %v", err)
		}
	})
}

// connectPair connects rank 0 on devs[0] with rank 1 on devs[1].
func connectPair(t *testing.T, devs [2]*fakeDevice) ([2]collective.Conn, [2]error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var eps [2]collective.Endpoint
	for r := range eps {
		ep, err := faultyTransport(devs[r]).Listen(ctx, collective.Self{Rank: r, Session: "p", IP: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		eps[r] = ep
	}
	var conns [2]collective.Conn
	var errs [2]error
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[r], errs[r] = eps[r].Connect(ctx, 1-r, eps[1-r].Addr(), 0)
		}()
	}
	wg.Wait()
	return conns, errs
}

// startAuto starts n ranks under auto, rank r on host hosts[r], each with
// the fake NIC as its transport between hosts (rdma(r)).
func startAuto(t *testing.T, hosts []string, rdma func(r int) collective.Transport) []*collective.Communicator {
	t.Helper()
	o := collective.Options{TransportName: "auto", ChunkBytes: 1000, Channels: 2, SmallMax: 1024, ConnectTimeout: 20 * time.Second}
	comms, err := collectivetest.StartEach(context.Background(), len(hosts), o, func(r int, o *collective.Options) {
		o.Host = hosts[r]
		if rdma != nil {
			o.RDMA = rdma(r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { collectivetest.CloseAll(comms) })
	return comms
}

func checkCollectives(t *testing.T, comms []*collective.Communicator) {
	t.Helper()
	for _, size := range []int{3, 1001, 20_000} {
		for _, dt := range []collective.DType{collective.Float32, collective.BFloat16} {
			if err := collectivetest.CheckAllReduce(comms, dt, collective.Sum, size, size); err != nil {
				t.Fatal(err)
			}
			if err := collectivetest.CheckReduceScatter(comms, dt, collective.Avg, size, size); err != nil {
				t.Fatal(err)
			}
			if err := collectivetest.CheckAllGather(comms, dt, size, size); err != nil {
				t.Fatal(err)
			}
			if err := collectivetest.CheckBroadcast(comms, dt, size, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func transports(comms []*collective.Communicator, pairs ...[2]int) string {
	var s []string
	for _, p := range pairs {
		s = append(s, comms[p[0]].TransportTo(p[1]))
	}
	return strings.Join(s, ",")
}

// TestAutoPicksRDMABetweenHosts: ranks 0,1 on one host and 2,3 on another
// use shm within a host and rdma across.
func TestAutoPicksRDMABetweenHosts(t *testing.T) {
	comms := startAuto(t, []string{"a", "a", "b", "b"}, func(int) collective.Transport { return faultyTransport(&fakeDevice{}) })
	if got, want := transports(comms, [2]int{0, 1}, [2]int{1, 2}, [2]int{2, 1}, [2]int{3, 0}, [2]int{2, 3}), "shm,rdma,rdma,rdma,shm"; got != want {
		t.Fatalf("transports 0-1, 1-2, 2-1, 3-0, 2-3 = %s, want %s", got, want)
	}
	for r, c := range comms {
		if fb := c.Fallbacks(); len(fb) != 0 {
			t.Errorf("rank %d fell back: %v", r, fb)
		}
	}
	checkCollectives(t, comms)
}

// TestAutoFallsBackToTCP: a fault on one rank's NIC makes both ends of its
// rdma connections fall back to tcp, the rest keep rdma, and the
// collectives still agree.
func TestAutoFallsBackToTCP(t *testing.T) {
	for _, f := range probeFaults {
		t.Run(f.name, func(t *testing.T) {
			comms := startAuto(t, []string{"a", "b", "c", "d"}, func(r int) collective.Transport {
				if r == 2 {
					return faultyTransport(f.dev())
				}
				return faultyTransport(&fakeDevice{})
			})
			// Rank 2's links: ring neighbours 1 and 3, and 0 (recursive doubling).
			if got, want := transports(comms, [2]int{1, 2}, [2]int{2, 1}, [2]int{2, 3}, [2]int{3, 2}, [2]int{0, 2}, [2]int{2, 0}, [2]int{0, 1}, [2]int{3, 0}),
				"tcp,tcp,tcp,tcp,tcp,tcp,rdma,rdma"; got != want {
				t.Fatalf("transports 1-2, 2-1, 2-3, 3-2, 0-2, 2-0, 0-1, 3-0 = %s, want %s", got, want)
			}
			if n := len(comms[2].Fallbacks()); n != 5 {
				t.Errorf("rank 2 records %d fallbacks, want 5 (2 channels to ranks 1 and 3, 1 to rank 0)", n)
			}
			for r := range comms {
				fb := comms[r].Fallbacks()
				if len(fb) == 0 {
					t.Fatalf("rank %d records no fallback", r)
				}
				for _, err := range fb {
					if !errors.Is(err, collective.ErrTransportUnavailable) || !strings.Contains(err.Error(), f.want) {
						t.Errorf("rank %d fallback: %v", r, err)
					}
				}
			}
			checkCollectives(t, comms)
		})
	}
}

// TestExplicitRDMADoesNotFallBack: asked for by name (here as
// Options.Transport, the fake's way in), rdma with the same fault fails
// New, naming rdma and the reason.
func TestExplicitRDMADoesNotFallBack(t *testing.T) {
	o := collective.Options{ConnectTimeout: 20 * time.Second, Channels: 1}
	_, err := collectivetest.StartEach(context.Background(), 2, o, func(r int, o *collective.Options) {
		dev := &fakeDevice{}
		if r == 1 {
			dev.corrupt = true
		}
		o.Transport = faultyTransport(dev)
	})
	if !errors.Is(err, collective.ErrTransportUnavailable) || !strings.Contains(err.Error(), "over rdma") || !strings.Contains(err.Error(), "probe") {
		t.Fatalf("New: %v, want a failure over rdma naming the probe", err)
	}
	t.Logf("New: %v", err)
}

// TestAutoWithoutRDMA: where the verbs library or device is missing, auto
// uses tcp between hosts as before, silently; a malformed ARK_COLL_RDMA_*
// value is still an error.
func TestAutoWithoutRDMA(t *testing.T) {
	t.Run("registered, no device here", func(t *testing.T) {
		if _, err := FromEnv(); err == nil {
			t.Skip("RDMA is available here")
		}
		comms := startAuto(t, []string{"a", "b"}, nil)
		if got := transports(comms, [2]int{0, 1}, [2]int{1, 0}); got != "tcp,tcp" {
			t.Fatalf("transports = %s, want tcp,tcp", got)
		}
		checkCollectives(t, comms)
	})
	t.Run("listen fails on one rank", func(t *testing.T) {
		comms := startAuto(t, []string{"a", "b"}, func(r int) collective.Transport {
			if r == 1 {
				return &Transport{opener: noDevice{}}
			}
			return faultyTransport(&fakeDevice{})
		})
		if got := transports(comms, [2]int{0, 1}, [2]int{1, 0}); got != "tcp,tcp" {
			t.Fatalf("transports = %s, want tcp,tcp", got)
		}
		if err := collectivetest.CheckAllReduce(comms, collective.Float32, collective.Sum, 5000, 1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("malformed configuration", func(t *testing.T) {
		t.Setenv("ARK_COLL_RDMA_PORT", "x")
		_, err := collectivetest.Start(context.Background(), 1, collective.Options{TransportName: "auto"})
		if !errors.Is(err, collective.ErrInvalid) {
			t.Fatalf("New: %v, want ErrInvalid", err)
		}
	})
}

type noDevice struct{}

func (noDevice) open(*Transport, collective.Self) (device, error) {
	return nil, fmt.Errorf("rdma transport: no active port: %w", ErrNoDevice)
}

func TestStatusCodec(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, fault := range []error{nil, errors.New("probe: echo differs at byte 3"), errors.New(long)} {
		a, b := pipe(t)
		go writeStatus(a, fault)
		got, err := readStatus(b)
		switch {
		case err != nil:
			t.Fatal(err)
		case fault == nil && got != nil, fault != nil && got == nil:
			t.Fatalf("status %v read as %v", fault, got)
		case fault != nil && !strings.HasPrefix(fault.Error(), got.Error()):
			t.Fatalf("reason %q read as %q", fault, got)
		}
	}
	a, b := pipe(t)
	go a.Write([]byte{7, 0})
	if _, err := readStatus(b); !errors.Is(err, errHandshake) {
		t.Fatalf("status byte 7: %v, want errHandshake", err)
	}
}

func pipe(t *testing.T) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
