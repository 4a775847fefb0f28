package collective_test

import (
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
