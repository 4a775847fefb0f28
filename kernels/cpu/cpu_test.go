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

// TestConformancePortable runs the suite with the portable Go micro-kernel
// on machines where the assembly one is chosen.
func TestConformancePortable(t *testing.T) {
	if kern.name == genericKernel.name {
		t.Skip("the portable micro-kernel is already the default here")
	}
	saved := kern
	kern = genericKernel
	defer func() { kern = saved }()
	kernelstest.Run(t, func(*testing.T) kernels.Device { return New(2) })
}
