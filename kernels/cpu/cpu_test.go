package cpu

import (
	"testing"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/kernelstest"
)

func TestConformance(t *testing.T) {
	for _, threads := range []int{1, 3} {
		t.Run(map[int]string{1: "1thread", 3: "3threads"}[threads], func(t *testing.T) {
			kernelstest.Run(t, func(*testing.T) kernels.Device { return New(threads) })
		})
	}
}

// TestConformanceEachKernel runs the suite with every matmul micro-kernel
// this CPU supports, not just the one chosen by default, and each with its
// bfloat16 forms left out (bfloat16 panels widened into scratch, as on an
// AVX-512 CPU without AVX512BW).
func TestConformanceEachKernel(t *testing.T) {
	saved := kern
	defer func() { kern = saved }()
	for _, k := range availableKernels() {
		if k.name != saved.name { // TestConformance covers it
			t.Run(k.name, func(t *testing.T) {
				kern = k
				kernelstest.Run(t, func(*testing.T) kernels.Device { return New(2) })
			})
		}
		if k.rowHalf == nil && k.fnHalf == nil {
			continue
		}
		plain := k
		plain.rowHalf, plain.fnHalf, plain.halfInterleaved = nil, nil, false
		if plain.edge != nil {
			edge := *plain.edge
			edge.fnHalf = nil
			plain.edge = &edge
		}
		t.Run(k.name+" bf16 widened", func(t *testing.T) {
			kern = plain
			kernelstest.Run(t, func(*testing.T) kernels.Device { return New(2) })
		})
	}
}
