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
// this CPU supports, not just the one chosen by default.
func TestConformanceEachKernel(t *testing.T) {
	saved := kern
	defer func() { kern = saved }()
	for _, k := range availableKernels() {
		if k.name == saved.name {
			continue // TestConformance covers it
		}
		t.Run(k.name, func(t *testing.T) {
			kern = k
			kernelstest.Run(t, func(*testing.T) kernels.Device { return New(2) })
		})
	}
}
