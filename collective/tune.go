package collective

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Tuning at start (Options.Tune, ARK_COLL_TUNE): the crossover between
// recursive doubling and the ring depends on the transport and the machine
// (on this project's 2-core VM, 2 ranks over /dev/shm cross over near
// 8 KiB and over TCP near 512 KiB; 4 ranks on 2 cores near 512 KiB), so
// one static table cannot be right everywhere. The pass times both
// algorithms on the communicator itself, rank 0 decides, and every rank
// adopts its answer, so all ranks keep choosing the same algorithm for a
// size, as they must.

// tuneSizes are the message sizes the pass times, in bytes.
var tuneSizes = []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}

// tuneReps is how many timed all-reduces per size and algorithm (after
// one warm-up); the median counts.
const tuneReps = 3

// tune measures the crossover and sets it for later operations. It runs
// once, right after the engine starts, on every rank (it is collective).
func (c *Communicator) tune(ctx context.Context) error {
	if c.size == 1 {
		return nil
	}
	buf := make([]float32, tuneSizes[len(tuneSizes)-1]/4)
	median := func(algo string, n int) (time.Duration, error) {
		if err := c.SetTuning(algo, 0); err != nil {
			return 0, err
		}
		var ds []time.Duration
		for i := 0; i <= tuneReps; i++ {
			start := time.Now()
			if err := c.AllReduce(ctx, Float32s(buf[:n/4]), Sum); err != nil {
				return 0, err
			}
			if i > 0 {
				ds = append(ds, time.Since(start))
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2], nil
	}
	// Every rank runs the same sequence (a rank that stopped early would
	// leave the others waiting); only rank 0's times are used.
	rdFaster := make([]bool, len(tuneSizes))
	for i, n := range tuneSizes {
		rd, err := median(AlgoRD, n)
		if err != nil {
			return fmt.Errorf("tuning pass: %w", err)
		}
		ring, err := median(AlgoRing, n)
		if err != nil {
			return fmt.Errorf("tuning pass: %w", err)
		}
		rdFaster[i] = rd <= ring
	}
	// The crossover is the last size before the ring wins twice in a row.
	crossover := 0
	for i, n := range tuneSizes {
		if rdFaster[i] {
			crossover = n
			continue
		}
		if i+1 < len(tuneSizes) && !rdFaster[i+1] {
			break
		}
	}
	// Rank 0's measurement decides; a float32 holds these sizes exactly.
	out := []float32{float32(crossover)}
	if err := c.Broadcast(ctx, Float32s(out), 0); err != nil {
		return fmt.Errorf("tuning pass: %w", err)
	}
	crossover = int(out[0])
	if crossover <= 0 {
		crossover = 8 // ring for everything but the tiniest messages
	}
	return c.SetTuning(AlgoAuto, crossover)
}

// Crossover is the largest message (bytes) auto sends with recursive
// doubling: the tuning pass's answer, or ARK_COLL_SMALL_MAX, or the
// default for the world size.
func (c *Communicator) Crossover() int { return c.tuning.Load().smallMax }
