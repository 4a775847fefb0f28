package collectivetest

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/ark-sched/ark/collective"
)

// Case is one correctness check: world size and element counts to try.
type Case struct {
	World int
	Sizes []int
}

// DefaultCases covers world sizes 1-8 with sizes that do not divide evenly,
// sizes smaller than the world, and sizes on both sides of the small-message
// crossover when o.SmallMax is small. They are kept small for -race on 2 cores.
func DefaultCases() []Case {
	small := []int{1, 3, 17, 1001}
	return []Case{
		{1, small}, {2, append(small, 9000)}, {3, append(small, 6001)}, {4, small},
		{5, small}, {6, []int{1, 5, 777}}, {7, []int{2, 13, 555}}, {8, []int{1, 7, 129, 2049}},
	}
}

// RunCollectives checks every operation, dtype and reduction against a
// serial reference for each case, with the group built from o.
func RunCollectives(t *testing.T, o collective.Options, cases []Case) {
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n%d", tc.World), func(t *testing.T) {
			comms := StartGroup(t, tc.World, o)
			for _, dt := range []collective.DType{collective.Float32, collective.BFloat16} {
				for _, size := range tc.Sizes {
					for _, op := range []collective.ReduceOp{collective.Sum, collective.Avg, collective.Max} {
						if err := CheckAllReduce(comms, dt, op, size, size); err != nil {
							t.Fatal(err)
						}
						if err := CheckReduceScatter(comms, dt, op, size, size); err != nil {
							t.Fatal(err)
						}
					}
					if err := CheckAllGather(comms, dt, size, size); err != nil {
						t.Fatal(err)
					}
					if err := CheckBroadcast(comms, dt, size, size%tc.World); err != nil {
						t.Fatal(err)
					}
				}
			}
			errs := Each(comms, func(_ int, c *collective.Communicator) error { return c.Barrier(context.Background()) })
			for r, err := range errs {
				if err != nil {
					t.Fatalf("barrier rank %d: %v", r, err)
				}
			}
		})
	}
}

// Value is the input of rank r at element i: a small integer, so sums over
// up to 8 ranks are exact in bfloat16 and results do not depend on order.
func Value(seed, r, i int) float32 {
	x := uint32(seed*7919 + r*104729 + i*31 + 17)
	x ^= x >> 7
	x *= 2654435761
	return float32(int(x>>27)%17 - 8)
}

type typed struct {
	dt  collective.DType
	f32 []float32
	b16 []collective.BF16
}

func newTyped(dt collective.DType, n int) *typed {
	if dt == collective.Float32 {
		return &typed{dt: dt, f32: make([]float32, n)}
	}
	return &typed{dt: dt, b16: make([]collective.BF16, n)}
}

func (t *typed) buf() collective.Buffer {
	if t.dt == collective.Float32 {
		return collective.Float32s(t.f32)
	}
	return collective.BFloat16s(t.b16)
}

func (t *typed) set(i int, v float32) {
	if t.dt == collective.Float32 {
		t.f32[i] = v
	} else {
		t.b16[i] = collective.ToBF16(v)
	}
}

func (t *typed) get(i int) float32 {
	if t.dt == collective.Float32 {
		return t.f32[i]
	}
	return t.b16[i].Float32()
}

func round(dt collective.DType, v float32) float32 {
	if dt == collective.BFloat16 {
		return collective.ToBF16(v).Float32()
	}
	return v
}

// reference is the serial result of reducing element i over n ranks.
func reference(dt collective.DType, op collective.ReduceOp, seed, n, i int) float32 {
	var acc float32
	for r := range n {
		v := Value(seed, r, i)
		switch {
		case r == 0:
			acc = v
		case op == collective.Max:
			acc = float32(math.Max(float64(acc), float64(v)))
		default:
			acc += v
		}
	}
	if op == collective.Avg {
		acc /= float32(n)
	}
	return round(dt, acc)
}

func same(a, b float32) bool { return a == b || (a != a && b != b) }

// CheckAllReduce runs one AllReduce of size elements on every rank and
// compares each result with the serial reference.
func CheckAllReduce(comms []*collective.Communicator, dt collective.DType, op collective.ReduceOp, size, seed int) error {
	n := len(comms)
	bufs := make([]*typed, n)
	for r := range n {
		bufs[r] = newTyped(dt, size)
		for i := range size {
			bufs[r].set(i, Value(seed, r, i))
		}
	}
	errs := Each(comms, func(r int, c *collective.Communicator) error {
		return c.AllReduce(context.Background(), bufs[r].buf(), op)
	})
	for r, err := range errs {
		if err != nil {
			return fmt.Errorf("allreduce %v %v n=%d size=%d rank %d: %w", dt, op, n, size, r, err)
		}
	}
	for r := range n {
		for i := range size {
			if want, got := reference(dt, op, seed, n, i), bufs[r].get(i); !same(want, got) {
				return fmt.Errorf("allreduce %v %v n=%d size=%d: rank %d element %d = %v, want %v", dt, op, n, size, r, i, got, want)
			}
		}
	}
	return nil
}

// CheckReduceScatter checks ReduceScatter of size elements.
func CheckReduceScatter(comms []*collective.Communicator, dt collective.DType, op collective.ReduceOp, size, seed int) error {
	n := len(comms)
	send, recv := make([]*typed, n), make([]*typed, n)
	for r := range n {
		send[r] = newTyped(dt, size)
		for i := range size {
			send[r].set(i, Value(seed, r, i))
		}
		lo, hi := collective.Partition(size, n, r)
		recv[r] = newTyped(dt, hi-lo)
	}
	errs := Each(comms, func(r int, c *collective.Communicator) error {
		return c.ReduceScatter(context.Background(), send[r].buf(), recv[r].buf(), op)
	})
	for r, err := range errs {
		if err != nil {
			return fmt.Errorf("reducescatter %v %v n=%d size=%d rank %d: %w", dt, op, n, size, r, err)
		}
	}
	for r := range n {
		lo, hi := collective.Partition(size, n, r)
		for i := lo; i < hi; i++ {
			if want, got := reference(dt, op, seed, n, i), recv[r].get(i-lo); !same(want, got) {
				return fmt.Errorf("reducescatter %v %v n=%d size=%d: rank %d element %d = %v, want %v", dt, op, n, size, r, i, got, want)
			}
			if got, want := send[r].get(i), round(dt, Value(seed, r, i)); got != want {
				return fmt.Errorf("reducescatter modified its send buffer")
			}
		}
	}
	return nil
}

// CheckAllGather checks AllGather into a size-element result.
func CheckAllGather(comms []*collective.Communicator, dt collective.DType, size, seed int) error {
	n := len(comms)
	send, recv := make([]*typed, n), make([]*typed, n)
	for r := range n {
		lo, hi := collective.Partition(size, n, r)
		send[r] = newTyped(dt, hi-lo)
		for i := lo; i < hi; i++ {
			send[r].set(i-lo, Value(seed, r, i))
		}
		recv[r] = newTyped(dt, size)
	}
	errs := Each(comms, func(r int, c *collective.Communicator) error {
		return c.AllGather(context.Background(), send[r].buf(), recv[r].buf())
	})
	for r, err := range errs {
		if err != nil {
			return fmt.Errorf("allgather %v n=%d size=%d rank %d: %w", dt, n, size, r, err)
		}
	}
	for r := range n {
		for owner := range n {
			lo, hi := collective.Partition(size, n, owner)
			for i := lo; i < hi; i++ {
				if want, got := round(dt, Value(seed, owner, i)), recv[r].get(i); want != got {
					return fmt.Errorf("allgather %v n=%d size=%d: rank %d element %d = %v, want %v", dt, n, size, r, i, got, want)
				}
			}
		}
	}
	return nil
}

// CheckBroadcast checks Broadcast of size elements from root.
func CheckBroadcast(comms []*collective.Communicator, dt collective.DType, size, root int) error {
	n := len(comms)
	bufs := make([]*typed, n)
	for r := range n {
		bufs[r] = newTyped(dt, size)
		for i := range size {
			bufs[r].set(i, Value(size, r, i))
		}
	}
	errs := Each(comms, func(r int, c *collective.Communicator) error {
		return c.Broadcast(context.Background(), bufs[r].buf(), root)
	})
	for r, err := range errs {
		if err != nil {
			return fmt.Errorf("broadcast %v n=%d size=%d root %d rank %d: %w", dt, n, size, root, r, err)
		}
	}
	for r := range n {
		for i := range size {
			if want, got := round(dt, Value(size, root, i)), bufs[r].get(i); want != got {
				return fmt.Errorf("broadcast %v n=%d size=%d root %d: rank %d element %d = %v, want %v", dt, n, size, root, r, i, got, want)
			}
		}
	}
	return nil
}
