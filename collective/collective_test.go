package collective_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

func testOptions(transport string) collective.Options {
	return collective.Options{
		TransportName: transport,
		ChunkBytes:    1000, // several chunks per block even for small sizes
		Channels:      2,
		SmallMax:      1024, // both algorithms run in the default cases
		Shm:           collective.ShmTransport{RingBytes: 64 << 10},
	}
}

func TestTCPTransport(t *testing.T) {
	t.Parallel()
	collectivetest.RunTransport(t, func(*testing.T) collective.Transport { return &collective.TCPTransport{} })
}

func TestShmTransport(t *testing.T) {
	t.Parallel()
	collectivetest.RunTransport(t, func(*testing.T) collective.Transport {
		return &collective.ShmTransport{RingBytes: 64 << 10}
	})
}

func TestCollectivesTCP(t *testing.T) {
	collectivetest.RunCollectives(t, testOptions("tcp"), collectivetest.DefaultCases())
}

func TestCollectivesShm(t *testing.T) {
	collectivetest.RunCollectives(t, testOptions("shm"), collectivetest.DefaultCases())
}

// TestMixedTransports: ranks 0,1 "on one host" and 2,3 "on another" use shm
// within a host and tcp across, in the same ring.
func TestMixedTransports(t *testing.T) {
	const n = 4
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	comms := make([]*collective.Communicator, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		o := collective.OnHost(testOptions("auto"), fmt.Sprintf("host%d", r/2))
		o.Rank, o.WorldSize, o.MasterAddr = r, n, ln.Addr().String()
		if r == 0 {
			o.Listener = ln
		}
		wg.Add(1)
		go func() { defer wg.Done(); comms[r], errs[r] = collective.New(context.Background(), o) }()
	}
	wg.Wait()
	t.Cleanup(func() { collectivetest.CloseAll(comms) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := comms[0].TransportTo(1) + "," + comms[1].TransportTo(2) + "," + comms[3].TransportTo(0); got != "shm,tcp,tcp" {
		t.Fatalf("transports 0-1, 1-2, 3-0 = %s, want shm,tcp,tcp", got)
	}
	for _, size := range []int{3, 1001, 20000} {
		for _, dt := range []collective.DType{collective.Float32, collective.BFloat16} {
			if err := collectivetest.CheckAllReduce(comms, dt, collective.Sum, size, size); err != nil {
				t.Fatal(err)
			}
			if err := collectivetest.CheckAllGather(comms, dt, size, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
}
