package collective_test

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/ark-sched/ark/collective"
)

// Two ranks in one process; a trainer instead calls collective.NewFromEnv
// with the RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT Ark sets.
func Example() {
	// Rank 0 serves the rendezvous on a listener on any free port; the
	// other ranks dial its address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	results := make([][]float32, 2)
	for rank := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := collective.Options{Rank: rank, WorldSize: 2, MasterAddr: ln.Addr().String()}
			if rank == 0 {
				o.Listener = ln
			}
			c, err := collective.New(context.Background(), o)
			if err != nil {
				panic(err)
			}
			defer c.Close()
			grad := []float32{float32(rank + 1), 10}
			// Start the all-reduce, overlap it with other work, then wait.
			h := c.AllReduceAsync(context.Background(), collective.Float32s(grad), collective.Avg)
			if err := h.Wait(); err != nil {
				panic(err)
			}
			results[rank] = grad
		}()
	}
	wg.Wait()
	fmt.Println(results[0], results[1])
	// Output: [1.5 10] [1.5 10]
}
