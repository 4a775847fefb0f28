// Package nccl loads NVIDIA's NCCL (libnccl.so.2) at run time with dlopen and
// wraps the calls the CUDA kernels backend needs to all-reduce GPU buffers:
// unique id, communicator init, all-reduce, destroy, abort. Buffers and
// streams are device pointers (uintptr) owned by the caller (the kernels
// package's CUDA backend). Bootstrap exchanges NCCL's unique id over an
// existing collective.Communicator, so the same rendezvous serves both.
//
// No headers or libraries are needed at build time. Without libnccl the
// error reads "libnccl.so.2 not found: ...". Honest status: only the absent
// library path has run (the project's CI machines have no GPU); the calls
// follow NCCL 2.x's documented ABI (ncclUniqueId is 128 bytes; enum values
// as in nccl.h) but have not been exercised against a real libnccl.
package nccl
