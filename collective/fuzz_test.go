package collective_test

import (
	"context"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

// FuzzChunking checks all-reduce, reduce-scatter and all-gather against the
// reference for arbitrary chunk sizes, channel counts, element counts and
// world sizes. Run: go test -fuzz FuzzChunking ./collective
func FuzzChunking(f *testing.F) {
	f.Add(uint16(64), uint8(1), uint16(1), uint8(2), false, true)
	f.Add(uint16(100), uint8(3), uint16(1001), uint8(3), true, false)
	f.Add(uint16(4096), uint8(2), uint16(333), uint8(4), false, false)
	f.Add(uint16(72), uint8(4), uint16(7), uint8(5), true, true)
	f.Fuzz(func(t *testing.T, chunk uint16, channels uint8, size uint16, world uint8, bf16, shm bool) {
		o := collective.Options{
			TransportName: "tcp",
			ChunkBytes:    64 + int(chunk)%8192,
			Channels:      1 + int(channels)%4,
			Algo:          collective.AlgoRing,
			Timeout:       20 * time.Second,
			Shm:           collective.ShmTransport{RingBytes: 16 << 10},
		}
		if shm {
			o.TransportName = "shm"
		}
		n := 2 + int(world)%4
		elems := 1 + int(size)%5000
		dt := collective.Float32
		if bf16 {
			dt = collective.BFloat16
		}
		comms, err := collectivetest.Start(context.Background(), n, o)
		if err != nil {
			t.Fatal(err)
		}
		defer collectivetest.CloseAll(comms)
		if err := collectivetest.CheckAllReduce(comms, dt, collective.Avg, elems, int(chunk)); err != nil {
			t.Fatal(err)
		}
		if err := collectivetest.CheckReduceScatter(comms, dt, collective.Sum, elems, int(size)); err != nil {
			t.Fatal(err)
		}
		if err := collectivetest.CheckAllGather(comms, dt, elems, 3); err != nil {
			t.Fatal(err)
		}
	})
}
