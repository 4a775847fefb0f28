package rdma

import (
	"errors"
	"strings"
	"testing"

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
