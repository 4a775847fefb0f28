// Package cpu is Ark's always-available kernels.Device: float32 compute on
// host memory, multi-threaded across a fixed pool of worker goroutines owned
// by the Device (started by New, stopped by Close).
//
// Matmul is blocked the BLIS way (pack panels of A and B per cache block,
// then a register-blocked micro-kernel over them); on amd64 with AVX2 and FMA
// the micro-kernel is Go assembly (6x16 floats, chosen at run time), elsewhere
// portable Go. The other ops are straightforward loops parallelised over rows,
// heads or channels. In steady state no op allocates: scratch is owned by the
// Device and grown on demand.
//
// The Device also implements kernels.HostAccess (buffers are Go slices, so
// collectives reduce them in place), kernels.BF16Storage, kernels.ThreadSetter
// and kernels.Describer.
package cpu
