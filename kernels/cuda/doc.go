// Package cuda is Ark's CUDA kernels.Device. It links nothing from CUDA at
// build time: libcuda.so.1 (the driver API), libnvrtc (the run-time compiler)
// and libcublas (optional, for matmul) are opened with dlopen when New is
// first called, the way go-nvml loads NVML, so the package builds with plain
// gcc and an Ark binary runs on machines without a GPU. Where the driver is
// missing, New returns an error wrapping kernels.ErrUnavailable that says so
// ("cuda: libcuda.so.1 not found ..."), never a crash.
//
// The kernels are CUDA C++ in kernels.cu. The binary embeds them compiled
// (images/: cubins for sm_80 and sm_90, PTX for compute_90, built by
// go generate with NVRTC and checked against the source by a test), so a
// GPU needs only the driver; for other architectures NVRTC compiles
// kernels.cu on first use and the cubin is cached under the user cache
// directory keyed by source, architecture and NVRTC version. Compile is the
// one NVRTC path (the fallback, the generator, the compile test); it needs
// no driver. Matmul goes to cuBLAS (row-major mapped onto its
// column-major SGEMM) when libcublas loads, and to Ark's tiled kernel
// otherwise. All work runs on the legacy default stream, which orders every
// launch and copy; errors from asynchronous faults surface at the next Sync
// or CopyOut.
//
// Honesty note: this backend was written and built on machines without an
// NVIDIA GPU. Its loader and its "no driver" error are tested there; the
// kernels and the cuBLAS mapping run the kernelstest conformance suite only
// where a GPU is present (the test skips otherwise and says why), and had
// not been run on a GPU when this was written. The kernels are simple and
// correct-first (a thread per row for attention and cross-entropy), not tuned.
// The Device also implements kernels.GatheredLoRA (lora_shrink and
// lora_expand: each row of a batch through its own adapter, for serving
// many adapters of one base); without a GPU their indexing is checked by a
// Go port of their loops over the real launch grids (lora_sim_test.go),
// which is not a substitute for running them.
//
// Without cgo the package still builds; New then reports that the binary was
// built without cgo.
package cuda
