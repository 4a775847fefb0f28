//go:build !linux

package cpu

import "time"

// threadCPU is 0 off Linux: the benchmarks report their wall rate only.
func threadCPU() time.Duration { return 0 }
