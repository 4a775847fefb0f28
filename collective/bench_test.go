package collective_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

// BenchmarkAllReduce times a float32 sum all-reduce between 2 in-process
// ranks over real loopback TCP and /dev/shm. b.SetBytes makes the reported
// MB/s the algorithm bandwidth (for 2 ranks busbw = algbw). For process
// ranks, the p2p baseline and the tables, use `ark bench allreduce`.
func BenchmarkAllReduce(b *testing.B) {
	for _, transport := range []string{"tcp", "shm"} {
		for _, size := range []int{8, 64 << 10, 4 << 20} {
			b.Run(fmt.Sprintf("%s/%dB", transport, size), func(b *testing.B) {
				comms := collectivetest.StartGroup(b, 2, collective.Options{TransportName: transport})
				bufs := [][]float32{make([]float32, size/4), make([]float32, size/4)}
				ctx := context.Background()
				done := make(chan error, 1)
				b.SetBytes(int64(size))
				b.ResetTimer()
				go func() {
					for range b.N {
						if err := comms[1].AllReduce(ctx, collective.Float32s(bufs[1]), collective.Sum); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				for range b.N {
					if err := comms[0].AllReduce(ctx, collective.Float32s(bufs[0]), collective.Sum); err != nil {
						b.Fatal(err)
					}
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
