//go:build cgo

package kbench

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>

// OpenBLAS is only a baseline for the benchmark, loaded at run time like the
// GPU libraries: Ark neither links nor needs it.
static void *blas;
static void (*p_sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
static void (*p_set_threads)(int);
static char *(*p_corename)(void);

static int ark_blas_load(void) {
	static const char *names[] = {"libopenblas.so.0", "libopenblas.so", NULL};
	if (blas) return 0;
	for (int i = 0; names[i] && !blas; i++) blas = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!blas) return -1;
	*(void **)(&p_sgemm) = dlsym(blas, "cblas_sgemm");
	*(void **)(&p_set_threads) = dlsym(blas, "openblas_set_num_threads");
	*(void **)(&p_corename) = dlsym(blas, "openblas_get_corename");
	if (!p_sgemm || !p_set_threads) { dlclose(blas); blas = NULL; return -2; }
	return 0;
}

static const char *ark_blas_core(void) { return p_corename ? p_corename() : "unknown"; }
static void ark_blas_threads(int n) { p_set_threads(n); }

// Row-major, no transposes: CblasRowMajor 101, CblasNoTrans 111.
static void ark_sgemm(int m, int n, int k, const float *a, const float *b, float *c) {
	p_sgemm(101, 111, 111, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}
*/
import "C"

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/cpu"
)

var (
	blasOnce sync.Once
	blasErr  error
)

// bestCore is the OpenBLAS kernel family to compare against on this CPU.
// OpenBLAS 0.3.21's own detection falls back to the SSE3 "Prescott" kernels
// on CPUs newer than it knows (this machine's Xeon is one), which would make
// a flattering baseline.
func bestCore() string {
	switch {
	case cpu.X86.HasAVX512F:
		return "SkylakeX"
	case cpu.X86.HasAVX2:
		return "Haswell"
	}
	return ""
}

// openBLAS loads libopenblas once and returns its core name (the kernel
// family it uses, e.g. "SkylakeX" or "Haswell"). core "" picks the best
// for this CPU, "env" leaves OPENBLAS_CORETYPE as the environment has it,
// anything else is set as OPENBLAS_CORETYPE before the library loads.
func openBLAS(core string) (string, error) {
	blasOnce.Do(func() {
		switch core {
		case "env":
		case "":
			if b := bestCore(); b != "" {
				_ = os.Setenv("OPENBLAS_CORETYPE", b)
			}
		default:
			_ = os.Setenv("OPENBLAS_CORETYPE", core)
		}
		switch C.ark_blas_load() {
		case -1:
			blasErr = errors.New("libopenblas.so.0 not found (apt install libopenblas0-pthread)")
		case -2:
			blasErr = errors.New("libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads")
		}
	})
	if blasErr != nil {
		return "", blasErr
	}
	return C.GoString(C.ark_blas_core()), nil
}

// blasSGEMM computes c = a*b (n x n, row-major) on threads threads.
func blasSGEMM(c, a, b []float32, n, threads int) {
	C.ark_blas_threads(C.int(threads))
	C.ark_sgemm(C.int(n), C.int(n), C.int(n), (*C.float)(&a[0]), (*C.float)(&b[0]), (*C.float)(&c[0]))
}
