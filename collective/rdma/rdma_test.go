package rdma

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

func TestAbsentLibraryIsACleanError(t *testing.T) {
	_, err := open("libibverbs-does-not-exist.so.1")
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "libibverbs-does-not-exist.so.1 not found: ") {
		t.Fatalf("got %v", err)
	}
}

func TestLoad(t *testing.T) {
	l, err := Load()
	if err != nil {
		if !errors.Is(err, ErrNoLibrary) || !strings.HasPrefix(err.Error(), "libibverbs.so.1 not found: ") {
			t.Fatalf("Load without the library: %v", err)
		}
		t.Skipf("no verbs library here: %v", err)
	}
	names, err := l.DeviceNames()
	if errors.Is(err, ErrNoDevice) {
		t.Skipf("libibverbs present, no device: %v", err)
	}
	if err != nil {
		t.Fatalf("DeviceNames: %v", err)
	}
	if len(names) == 0 {
		t.Skip("libibverbs present but no device")
	}
	if err := l.Probe(); err != nil {
		t.Fatalf("Probe: %v", err)
	}
}

// TestNetdevTCPConformance runs the transport suite on the RDMA netdev
// where a device exists; here it checks that no device is a clean error.
func TestNetdevTCPConformance(t *testing.T) {
	tr, err := NetdevTCP()
	if err != nil {
		if !errors.Is(err, ErrNoDevice) {
			t.Fatalf("NetdevTCP: %v", err)
		}
		t.Skipf("no RDMA device: %v", err)
	}
	collectivetest.RunTransport(t, func(*testing.T) collective.Transport { c := *tr; return &c })
}

// realTransport returns a verbs Transport where this machine can run one,
// or skips the test saying why not.
func realTransport(t *testing.T) *Transport {
	t.Helper()
	tr, err := FromEnv()
	if err != nil {
		if !errors.Is(err, ErrNoLibrary) && !errors.Is(err, ErrNoDevice) {
			t.Fatalf("FromEnv: %v", err)
		}
		t.Skipf("no RDMA here: %v", err)
	}
	// Listen checks the port too (active, RoCE GID).
	ep, err := tr.Listen(context.Background(), collective.Self{Rank: 0, Session: "probe", IP: "127.0.0.1"})
	if err != nil {
		if errors.Is(err, ErrNoDevice) {
			t.Skipf("no usable RDMA port: %v", err)
		}
		t.Fatalf("Listen: %v", err)
	}
	ep.Close()
	return tr
}

// TestVerbsConformance runs the transport suite over real queue pairs
// (loopback through the NIC) where libibverbs and an active port exist.
func TestVerbsConformance(t *testing.T) {
	tr := realTransport(t)
	collectivetest.RunTransport(t, func(*testing.T) collective.Transport { c := *tr; return &c })
}

func TestVerbsCollectives(t *testing.T) {
	realTransport(t) // skips without RDMA; the group builds its own with FromEnv
	collectivetest.RunCollectives(t, collective.Options{TransportName: "rdma", ChunkBytes: 1000, Channels: 2, SmallMax: 1024},
		collectivetest.DefaultCases()[:4])
}

// TestUnavailableIsAClearError: where verbs cannot run, selecting rdma
// fails New and Listen with ErrNoLibrary or ErrNoDevice, never a crash.
func TestUnavailableIsAClearError(t *testing.T) {
	if _, err := FromEnv(); err == nil {
		t.Skip("RDMA is available here")
	}
	_, err := (&Transport{}).Listen(context.Background(), collective.Self{Rank: 0, Session: "x", IP: "127.0.0.1"})
	if !errors.Is(err, ErrNoLibrary) && !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Listen: %v, want ErrNoLibrary or ErrNoDevice", err)
	}
	t.Logf("Listen: %v", err)
	_, err = collectivetest.Start(context.Background(), 2, collective.Options{TransportName: "rdma", ConnectTimeout: 2 * time.Second, Timeout: time.Second})
	if !errors.Is(err, ErrNoLibrary) && !errors.Is(err, ErrNoDevice) {
		t.Fatalf("New with TransportName rdma: %v, want ErrNoLibrary or ErrNoDevice", err)
	}
	t.Logf("New: %v", err)
}

// TestRegistered: importing this package registers "rdma" with the
// collective, and a Communicator built over it uses it for its peers.
func TestRegistered(t *testing.T) {
	comms := collectivetest.StartGroup(t, 2, collective.Options{Transport: fakeTransport()})
	if got := comms[0].TransportTo(1); got != "rdma" {
		t.Fatalf("TransportTo = %q", got)
	}
	if err := collectivetest.CheckAllReduce(comms, collective.Float32, collective.Sum, 300_000, 1); err != nil {
		t.Fatal(err)
	}
}

func TestFromEnvRejects(t *testing.T) {
	for _, kv := range [][2]string{{"ARK_COLL_RDMA_PORT", "x"}, {"ARK_COLL_RDMA_GID_INDEX", "-1"}, {"ARK_COLL_RDMA_TC", "999"}} {
		t.Run(kv[0], func(t *testing.T) {
			t.Setenv(kv[0], kv[1])
			if _, err := FromEnv(); !errors.Is(err, collective.ErrInvalid) {
				t.Fatalf("%s=%s: %v, want ErrInvalid", kv[0], kv[1], err)
			}
		})
	}
}
