package cuda

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/kernelstest"
)

// TestUnavailableIsCleanError: where there is no driver (or no GPU), New
// returns an error wrapping kernels.ErrUnavailable that names what is
// missing, instead of crashing.
func TestUnavailableIsCleanError(t *testing.T) {
	if Available() == nil {
		t.Skip("a CUDA device is present here; the unavailable path is not reachable")
	}
	d, err := New(0)
	if d != nil || err == nil {
		t.Fatalf("New(0) = %v, %v; want nil and an error", d, err)
	}
	if !errors.Is(err, kernels.ErrUnavailable) {
		t.Fatalf("error %q does not wrap kernels.ErrUnavailable", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "cuda: ") {
		t.Errorf("error %q does not say it is from cuda", msg)
	}
	if strings.Contains(msg, "libcuda") && !strings.Contains(msg, "libcuda.so.1 not found") {
		t.Errorf("error %q: want \"libcuda.so.1 not found\"", msg)
	}
	t.Logf("as expected here: %v", err)
	// A second call gives the same answer (the load is attempted once).
	if _, err2 := New(0); err2 == nil || err2.Error() != msg {
		t.Errorf("second New: %v, want %q", err2, msg)
	}
}

// TestConformance runs the shared suite on GPU 0 where there is one.
func TestConformance(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("no CUDA GPU here, conformance not run: %v", err)
	}
	kernelstest.Run(t, func(t *testing.T) kernels.Device {
		d, err := New(0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// cudaShim declares just enough of CUDA C++ for a host compiler to
// type-check kernels.cu.
const cudaShim = `
#define __global__
#define __device__
#define __shared__ static
struct ark_dim3 { unsigned x, y, z; };
extern ark_dim3 threadIdx, blockIdx, blockDim, gridDim;
void __syncthreads();
float atomicAdd(float *, float);
float expf(float); float logf(float); float tanhf(float); float sqrtf(float);
float rsqrtf(float); float fmaxf(float, float);
unsigned __float_as_uint(float); float __uint_as_float(unsigned);
float __shfl_down_sync(unsigned, float, int);
`

// TestKernelSourceTypeChecks compiles kernels.cu with the host C++ compiler
// against a shim of the CUDA built-ins: it catches syntax and type errors on
// machines without NVRTC. It is not a substitute for running on a GPU.
func TestKernelSourceTypeChecks(t *testing.T) {
	cxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++ here")
	}
	dir := t.TempDir()
	shim := filepath.Join(dir, "shim.h")
	if err := os.WriteFile(shim, []byte(cudaShim), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cxx, "-fsyntax-only", "-Wall", "-Wno-unused-function", "-x", "c++",
		"-include", shim, "kernels.cu").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("g++ -fsyntax-only kernels.cu: %v\n%s", err, out)
	}
}

// TestKernelNamesExist: every kernel the Device resolves is defined in the
// source.
func TestKernelNamesExist(t *testing.T) {
	src, err := os.ReadFile("kernels.cu")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range kernelNames {
		if !strings.Contains(string(src), "__global__ void "+n+"(") {
			t.Errorf("kernel %s is not defined in kernels.cu", n)
		}
	}
}
