package collective_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/ark-sched/ark/collective"
)

// Two ranks in one process; a trainer instead calls collective.NewFromEnv
// with the RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT Ark sets.
func Example() {
	var wg sync.WaitGroup
	results := make([][]float32, 2)
	for rank := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := collective.New(context.Background(), collective.Options{
				Rank: rank, WorldSize: 2, MasterAddr: "127.0.0.1:29517",
			})
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
