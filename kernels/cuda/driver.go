//go:build cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The CUDA driver, NVRTC and cuBLAS types Ark uses, declared here so the
// build needs no CUDA headers. Handles are opaque pointers; CUdeviceptr is
// 64-bit on every platform CUDA supports.
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream;
typedef unsigned long long CUdeviceptr;
typedef int nvrtcResult;
typedef void *nvrtcProgram;
typedef int cublasStatus_t;
typedef void *cublasHandle_t;

static void *lib_cuda, *lib_nvrtc, *lib_cublas;
static char dl_error[512];

static CUresult (*p_cuInit)(unsigned);
static CUresult (*p_cuDriverGetVersion)(int *);
static CUresult (*p_cuDeviceGetCount)(int *);
static CUresult (*p_cuDeviceGet)(CUdevice *, int);
static CUresult (*p_cuDeviceGetName)(char *, int, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int *, int, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRelease)(CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*p_cuMemFree)(CUdeviceptr);
static CUresult (*p_cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
static CUresult (*p_cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
static CUresult (*p_cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
static CUresult (*p_cuMemsetD32)(CUdeviceptr, unsigned, size_t);
static CUresult (*p_cuModuleLoadData)(CUmodule *, const void *);
static CUresult (*p_cuModuleUnload)(CUmodule);
static CUresult (*p_cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
	unsigned, CUstream, void **, void **);
static CUresult (*p_cuGetErrorString)(CUresult, const char **);

static nvrtcResult (*p_nvrtcVersion)(int *, int *);
static nvrtcResult (*p_nvrtcCreateProgram)(nvrtcProgram *, const char *, const char *, int, const char **, const char **);
static nvrtcResult (*p_nvrtcCompileProgram)(nvrtcProgram, int, const char **);
static nvrtcResult (*p_nvrtcGetProgramLogSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetProgramLog)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcGetCUBINSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetCUBIN)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcGetPTXSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetPTX)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcDestroyProgram)(nvrtcProgram *);
static const char *(*p_nvrtcGetErrorString)(nvrtcResult);

static cublasStatus_t (*p_cublasCreate)(cublasHandle_t *);
static cublasStatus_t (*p_cublasDestroy)(cublasHandle_t);
static cublasStatus_t (*p_cublasSgemm)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int,
	const float *, int, const float *, float *, int);

// open tries each name in turn; on failure dl_error holds the dlerror of
// the first (preferred) name.
static void *open_first(const char **names) {
	for (int i = 0; names[i]; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (h) return h;
		const char *e = dlerror();
		if (i == 0) snprintf(dl_error, sizeof dl_error, "%s", e ? e : names[i]);
	}
	return NULL;
}

#define SYM(lib, var, name) do { *(void **)(&var) = dlsym(lib, name); \
	if (!var) { snprintf(dl_error, sizeof dl_error, "symbol %s not found", name); return -2; } } while (0)

// ark_load_cuda returns 0, -1 (library missing: dl_error says why) or -2
// (symbol missing).
static int ark_load_cuda(void) {
	static const char *names[] = {"libcuda.so.1", "libcuda.so", NULL};
	if (lib_cuda) return 0;
	void *h = open_first(names);
	if (!h) return -1;
	SYM(h, p_cuInit, "cuInit");
	SYM(h, p_cuDriverGetVersion, "cuDriverGetVersion");
	SYM(h, p_cuDeviceGetCount, "cuDeviceGetCount");
	SYM(h, p_cuDeviceGet, "cuDeviceGet");
	SYM(h, p_cuDeviceGetName, "cuDeviceGetName");
	SYM(h, p_cuDeviceGetAttribute, "cuDeviceGetAttribute");
	SYM(h, p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	SYM(h, p_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
	SYM(h, p_cuCtxSetCurrent, "cuCtxSetCurrent");
	SYM(h, p_cuCtxSynchronize, "cuCtxSynchronize");
	SYM(h, p_cuMemAlloc, "cuMemAlloc_v2");
	SYM(h, p_cuMemFree, "cuMemFree_v2");
	SYM(h, p_cuMemcpyHtoD, "cuMemcpyHtoD_v2");
	SYM(h, p_cuMemcpyDtoH, "cuMemcpyDtoH_v2");
	SYM(h, p_cuMemcpyDtoD, "cuMemcpyDtoD_v2");
	SYM(h, p_cuMemsetD32, "cuMemsetD32_v2");
	SYM(h, p_cuModuleLoadData, "cuModuleLoadData");
	SYM(h, p_cuModuleUnload, "cuModuleUnload");
	SYM(h, p_cuModuleGetFunction, "cuModuleGetFunction");
	SYM(h, p_cuLaunchKernel, "cuLaunchKernel");
	SYM(h, p_cuGetErrorString, "cuGetErrorString");
	lib_cuda = h;
	return 0;
}

static int ark_load_nvrtc(void) {
	static const char *names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", NULL};
	if (lib_nvrtc) return 0;
	void *h = open_first(names);
	if (!h) return -1;
	SYM(h, p_nvrtcVersion, "nvrtcVersion");
	SYM(h, p_nvrtcCreateProgram, "nvrtcCreateProgram");
	SYM(h, p_nvrtcCompileProgram, "nvrtcCompileProgram");
	SYM(h, p_nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize");
	SYM(h, p_nvrtcGetProgramLog, "nvrtcGetProgramLog");
	SYM(h, p_nvrtcGetCUBINSize, "nvrtcGetCUBINSize");
	SYM(h, p_nvrtcGetCUBIN, "nvrtcGetCUBIN");
	SYM(h, p_nvrtcGetPTXSize, "nvrtcGetPTXSize");
	SYM(h, p_nvrtcGetPTX, "nvrtcGetPTX");
	SYM(h, p_nvrtcDestroyProgram, "nvrtcDestroyProgram");
	SYM(h, p_nvrtcGetErrorString, "nvrtcGetErrorString");
	lib_nvrtc = h;
	return 0;
}

static int ark_load_cublas(void) {
	static const char *names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", NULL};
	if (lib_cublas) return 0;
	void *h = open_first(names);
	if (!h) return -1;
	SYM(h, p_cublasCreate, "cublasCreate_v2");
	SYM(h, p_cublasDestroy, "cublasDestroy_v2");
	SYM(h, p_cublasSgemm, "cublasSgemm_v2");
	lib_cublas = h;
	return 0;
}

static const char *ark_dl_error(void) { return dl_error; }

static const char *ark_cu_error(CUresult r) {
	const char *s = NULL;
	if (p_cuGetErrorString && p_cuGetErrorString(r, &s) == 0 && s) return s;
	return "unknown CUDA error";
}

// Every call that needs a context makes ctx current on the calling thread
// first: goroutines move between OS threads.
#define CTX(ctx) do { CUresult r_ = p_cuCtxSetCurrent((CUcontext)(ctx)); if (r_) return r_; } while (0)

static CUresult ark_init(void) { return p_cuInit(0); }
static CUresult ark_driver_version(int *v) { return p_cuDriverGetVersion(v); }
static CUresult ark_device_count(int *n) { return p_cuDeviceGetCount(n); }
static CUresult ark_device_get(int *dev, int ordinal) { return p_cuDeviceGet(dev, ordinal); }
static CUresult ark_device_name(char *buf, int n, int dev) { return p_cuDeviceGetName(buf, n, dev); }
static CUresult ark_device_attr(int *v, int attr, int dev) { return p_cuDeviceGetAttribute(v, attr, dev); }
static CUresult ark_ctx_retain(uintptr_t *ctx, int dev) {
	CUcontext c = NULL;
	CUresult r = p_cuDevicePrimaryCtxRetain(&c, dev);
	*ctx = (uintptr_t)c;
	return r;
}
static CUresult ark_ctx_release(int dev) { return p_cuDevicePrimaryCtxRelease(dev); }
static CUresult ark_sync(uintptr_t ctx) { CTX(ctx); return p_cuCtxSynchronize(); }
static CUresult ark_alloc(uintptr_t ctx, CUdeviceptr *p, size_t n) { CTX(ctx); return p_cuMemAlloc(p, n); }
static CUresult ark_free(uintptr_t ctx, CUdeviceptr p) { CTX(ctx); return p_cuMemFree(p); }
static CUresult ark_htod(uintptr_t ctx, CUdeviceptr dst, const void *src, size_t n) {
	CTX(ctx);
	return p_cuMemcpyHtoD(dst, src, n);
}
static CUresult ark_dtoh(uintptr_t ctx, void *dst, CUdeviceptr src, size_t n) {
	CTX(ctx);
	return p_cuMemcpyDtoH(dst, src, n);
}
static CUresult ark_dtod(uintptr_t ctx, CUdeviceptr dst, CUdeviceptr src, size_t n) {
	CTX(ctx);
	return p_cuMemcpyDtoD(dst, src, n);
}
static CUresult ark_memset32(uintptr_t ctx, CUdeviceptr dst, unsigned v, size_t n) {
	CTX(ctx);
	return p_cuMemsetD32(dst, v, n);
}
static CUresult ark_module_load(uintptr_t ctx, uintptr_t *mod, const void *image) {
	CUmodule m = NULL;
	CTX(ctx);
	CUresult r = p_cuModuleLoadData(&m, image);
	*mod = (uintptr_t)m;
	return r;
}
static CUresult ark_module_unload(uintptr_t ctx, uintptr_t mod) { CTX(ctx); return p_cuModuleUnload((CUmodule)mod); }
static CUresult ark_module_function(uintptr_t ctx, uintptr_t *fn, uintptr_t mod, const char *name) {
	CUfunction f = NULL;
	CTX(ctx);
	CUresult r = p_cuModuleGetFunction(&f, (CUmodule)mod, name);
	*fn = (uintptr_t)f;
	return r;
}

// ark_launch launches fn on the legacy default stream (which orders every
// launch and copy) with nargs parameters packed in 8-byte slots of args.
static CUresult ark_launch(uintptr_t ctx, uintptr_t fn, unsigned gx, unsigned gy, unsigned gz,
	unsigned bx, unsigned by, unsigned bz, unsigned shmem, void *args, int nargs) {
	void *params[32];
	if (nargs > 32) return 1; // CUDA_ERROR_INVALID_VALUE
	for (int i = 0; i < nargs; i++) params[i] = (char *)args + 8 * i;
	CTX(ctx);
	return p_cuLaunchKernel((CUfunction)fn, gx, gy, gz, bx, by, bz, shmem, NULL, params, NULL);
}

static int ark_nvrtc_version(int *major, int *minor) { return p_nvrtcVersion(major, minor); }
static const char *ark_nvrtc_error(nvrtcResult r) { return p_nvrtcGetErrorString(r); }

// ark_nvrtc_compile compiles src; on return *log (malloc'd, may be NULL)
// holds the compiler log and *cubin (malloc'd) the image: the cubin, or
// the PTX text (with its terminating NUL, as cuModuleLoadData wants it)
// when ptx is set (a compute_XX target has no cubin).
static nvrtcResult ark_nvrtc_compile(const char *src, const char *name, int nopts, const char **opts, int ptx,
	char **cubin, size_t *cubin_size, char **log) {
	nvrtcProgram p = NULL;
	size_t n = 0;
	*cubin = NULL; *log = NULL; *cubin_size = 0;
	nvrtcResult r = p_nvrtcCreateProgram(&p, src, name, 0, NULL, NULL);
	if (r) return r;
	nvrtcResult rc = p_nvrtcCompileProgram(p, nopts, opts);
	if (p_nvrtcGetProgramLogSize(p, &n) == 0 && n > 1) {
		*log = malloc(n);
		if (*log && p_nvrtcGetProgramLog(p, *log) != 0) { free(*log); *log = NULL; }
	}
	if (rc == 0) {
		rc = ptx ? p_nvrtcGetPTXSize(p, &n) : p_nvrtcGetCUBINSize(p, &n);
		if (rc == 0) {
			*cubin = malloc(n);
			*cubin_size = n;
			rc = !*cubin ? 1 : ptx ? p_nvrtcGetPTX(p, *cubin) : p_nvrtcGetCUBIN(p, *cubin);
		}
	}
	p_nvrtcDestroyProgram(&p);
	return rc;
}

static CUresult ark_ctx_set_current(uintptr_t ctx) { return p_cuCtxSetCurrent((CUcontext)ctx); }
static cublasStatus_t ark_cublas_create(uintptr_t ctx, uintptr_t *h) {
	cublasHandle_t c = NULL;
	if (p_cuCtxSetCurrent((CUcontext)ctx)) return 1;
	cublasStatus_t r = p_cublasCreate(&c);
	*h = (uintptr_t)c;
	return r;
}
static cublasStatus_t ark_cublas_destroy(uintptr_t ctx, uintptr_t h) {
	if (p_cuCtxSetCurrent((CUcontext)ctx)) return 1;
	return p_cublasDestroy((cublasHandle_t)h);
}
static cublasStatus_t ark_sgemm(uintptr_t ctx, uintptr_t h, int ta, int tb, int m, int n, int k, float alpha,
	CUdeviceptr a, int lda, CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc) {
	if (p_cuCtxSetCurrent((CUcontext)ctx)) return 1;
	return p_cublasSgemm((cublasHandle_t)h, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb,
		&beta, (float *)c, ldc);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/ark-sched/ark/kernels"
)

// cuError is a CUDA driver error code with its name from cuGetErrorString.
type cuError struct {
	code int
	msg  string
}

func (e *cuError) Error() string { return fmt.Sprintf("CUDA error %d: %s", e.code, e.msg) }

func check(r C.CUresult) error {
	if r == 0 {
		return nil
	}
	return &cuError{code: int(r), msg: C.GoString(C.ark_cu_error(r))}
}

const cudaErrorNoDevice = 100

var (
	loadOnce  sync.Once
	loadErr   error
	haveBLAS  bool
	nvrtcOnce sync.Once
	nvrtcErr  error
)

// load opens libcuda (required) and libcublas (optional) once per process
// and initialises the driver. NVRTC is loaded apart (loadNVRTC): a GPU
// whose architecture has an embedded image needs only the driver, and
// compiling needs no driver.
func load() error {
	loadOnce.Do(func() {
		switch C.ark_load_cuda() {
		case -1:
			loadErr = fmt.Errorf("cuda: libcuda.so.1 not found (no NVIDIA driver on this machine?): %s: %w",
				C.GoString(C.ark_dl_error()), kernels.ErrUnavailable)
			return
		case -2:
			loadErr = fmt.Errorf("cuda: libcuda.so.1 is too old: %s: %w", C.GoString(C.ark_dl_error()), kernels.ErrUnavailable)
			return
		}
		if err := check(C.ark_init()); err != nil {
			if ce, ok := err.(*cuError); ok && ce.code == cudaErrorNoDevice {
				loadErr = fmt.Errorf("cuda: no CUDA device: %w: %w", err, kernels.ErrUnavailable)
			} else {
				loadErr = fmt.Errorf("cuda: cuInit: %w: %w", err, kernels.ErrUnavailable)
			}
			return
		}
		haveBLAS = C.ark_load_cublas() == 0
	})
	return loadErr
}

// loadNVRTC opens libnvrtc once per process.
func loadNVRTC() error {
	nvrtcOnce.Do(func() {
		switch C.ark_load_nvrtc() {
		case -1:
			nvrtcErr = fmt.Errorf("cuda: libnvrtc.so not found (install NVRTC: Debian's libnvrtc11.2 and libnvrtc-builtins11.8 from non-free, or the CUDA toolkit): %s: %w",
				C.GoString(C.ark_dl_error()), kernels.ErrUnavailable)
		case -2:
			nvrtcErr = fmt.Errorf("cuda: libnvrtc: %s: %w", C.GoString(C.ark_dl_error()), kernels.ErrUnavailable)
		}
	})
	return nvrtcErr
}

// Available reports whether a CUDA device can be opened here, and why not.
func Available() error {
	if err := load(); err != nil {
		return err
	}
	var n C.int
	if err := check(C.ark_device_count(&n)); err != nil {
		return fmt.Errorf("cuda: count devices: %w: %w", err, kernels.ErrUnavailable)
	}
	if n == 0 {
		return fmt.Errorf("cuda: no CUDA device: %w", kernels.ErrUnavailable)
	}
	return nil
}

type ctxHandle = C.uintptr_t

func deviceInfo(ordinal int) (dev C.int, name string, major, minor int, err error) {
	if err = check(C.ark_device_get(&dev, C.int(ordinal))); err != nil {
		return 0, "", 0, 0, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	var buf [256]C.char
	if err = check(C.ark_device_name(&buf[0], C.int(len(buf)), dev)); err != nil {
		return 0, "", 0, 0, fmt.Errorf("cuda: device %d name: %w", ordinal, err)
	}
	var ma, mi C.int
	const attrMajor, attrMinor = 75, 76 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR/MINOR
	if err = check(C.ark_device_attr(&ma, attrMajor, dev)); err == nil {
		err = check(C.ark_device_attr(&mi, attrMinor, dev))
	}
	if err != nil {
		return 0, "", 0, 0, fmt.Errorf("cuda: device %d compute capability: %w", ordinal, err)
	}
	return dev, C.GoString(&buf[0]), int(ma), int(mi), nil
}

func ctxRetain(dev C.int) (ctxHandle, error) {
	var c C.uintptr_t
	if err := check(C.ark_ctx_retain(&c, dev)); err != nil {
		return 0, fmt.Errorf("cuda: retain primary context: %w", err)
	}
	return c, nil
}

func ctxRelease(dev C.int) error { return check(C.ark_ctx_release(dev)) }

func ctxSync(ctx ctxHandle) error { return check(C.ark_sync(ctx)) }

func ctxSetCurrent(ctx ctxHandle) error { return check(C.ark_ctx_set_current(ctx)) }

func memAlloc(ctx ctxHandle, bytes int) (uint64, error) {
	var p C.CUdeviceptr
	if bytes == 0 {
		bytes = 4 // cuMemAlloc rejects 0; a 0-element buffer still needs an address
	}
	err := check(C.ark_alloc(ctx, &p, C.size_t(bytes)))
	return uint64(p), err
}

func memFree(ctx ctxHandle, p uint64) error { return check(C.ark_free(ctx, C.CUdeviceptr(p))) }

func memcpyHtoD(ctx ctxHandle, dst uint64, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return check(C.ark_htod(ctx, C.CUdeviceptr(dst), unsafe.Pointer(&src[0]), C.size_t(len(src))))
}

func memcpyDtoH(ctx ctxHandle, dst []byte, src uint64) error {
	if len(dst) == 0 {
		return nil
	}
	return check(C.ark_dtoh(ctx, unsafe.Pointer(&dst[0]), C.CUdeviceptr(src), C.size_t(len(dst))))
}

func memcpyDtoD(ctx ctxHandle, dst, src uint64, bytes int) error {
	if bytes == 0 {
		return nil
	}
	return check(C.ark_dtod(ctx, C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(bytes)))
}

func memsetD32(ctx ctxHandle, dst uint64, v uint32, n int) error {
	if n == 0 {
		return nil
	}
	return check(C.ark_memset32(ctx, C.CUdeviceptr(dst), C.unsigned(v), C.size_t(n)))
}

func moduleLoad(ctx ctxHandle, image []byte) (C.uintptr_t, error) {
	var m C.uintptr_t
	cimg := C.CBytes(image)
	defer C.free(cimg)
	return m, check(C.ark_module_load(ctx, &m, cimg))
}

func moduleUnload(ctx ctxHandle, m C.uintptr_t) error { return check(C.ark_module_unload(ctx, m)) }

func moduleFunction(ctx ctxHandle, m C.uintptr_t, name string) (C.uintptr_t, error) {
	var f C.uintptr_t
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if err := check(C.ark_module_function(ctx, &f, m, cname)); err != nil {
		return 0, fmt.Errorf("cuda: kernel %s: %w", name, err)
	}
	return f, nil
}

// launch runs fn with the packed arguments (8-byte slots).
func launch(ctx ctxHandle, fn C.uintptr_t, grid, block [3]uint32, args []uint64) error {
	if len(args) == 0 {
		args = []uint64{0}
	}
	return check(C.ark_launch(ctx, fn, C.unsigned(grid[0]), C.unsigned(grid[1]), C.unsigned(grid[2]),
		C.unsigned(block[0]), C.unsigned(block[1]), C.unsigned(block[2]), 0, unsafe.Pointer(&args[0]), C.int(len(args))))
}

func nvrtcVersion() (int, int) {
	var ma, mi C.int
	C.ark_nvrtc_version(&ma, &mi)
	return int(ma), int(mi)
}

// nvrtcCompile compiles CUDA C++ source to a cubin (or PTX text, NUL
// included, when ptx is set) with the given options. loadNVRTC must have
// succeeded.
func nvrtcCompile(src, name string, opts []string, ptx bool) ([]byte, string, error) {
	csrc, cname := C.CString(src), C.CString(name)
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
		defer C.free(unsafe.Pointer(copts[i]))
	}
	// The option array holds C pointers only, so it is C memory.
	arr := (**C.char)(C.malloc(C.size_t(len(copts)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(copts)), copts)
	var cubin, clog *C.char
	var size C.size_t
	r := C.ark_nvrtc_compile(csrc, cname, C.int(len(opts)), arr, C.int(b2i(ptx)), &cubin, &size, &clog)
	var log string
	if clog != nil {
		log = C.GoString(clog)
		C.free(unsafe.Pointer(clog))
	}
	if r != 0 {
		if cubin != nil {
			C.free(unsafe.Pointer(cubin))
		}
		return nil, log, fmt.Errorf("nvrtc: %s", C.GoString(C.ark_nvrtc_error(r)))
	}
	out := C.GoBytes(unsafe.Pointer(cubin), C.int(size))
	C.free(unsafe.Pointer(cubin))
	return out, log, nil
}

func cublasCreate(ctx ctxHandle) (C.uintptr_t, error) {
	var h C.uintptr_t
	if r := C.ark_cublas_create(ctx, &h); r != 0 {
		return 0, fmt.Errorf("cublas: create handle: status %d", int(r))
	}
	return h, nil
}

func cublasDestroy(ctx ctxHandle, h C.uintptr_t) error {
	if r := C.ark_cublas_destroy(ctx, h); r != 0 {
		return fmt.Errorf("cublas: destroy handle: status %d", int(r))
	}
	return nil
}

// sgemm is cublasSgemm on column-major operands (see matmul for the
// row-major mapping).
func sgemm(ctx ctxHandle, h C.uintptr_t, ta, tb bool, m, n, k int, alpha float32, a uint64, lda int,
	b uint64, ldb int, beta float32, c uint64, ldc int) error {
	op := func(t bool) C.int {
		if t {
			return 1 // CUBLAS_OP_T
		}
		return 0 // CUBLAS_OP_N
	}
	if r := C.ark_sgemm(ctx, h, op(ta), op(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.CUdeviceptr(a), C.int(lda), C.CUdeviceptr(b), C.int(ldb), C.float(beta), C.CUdeviceptr(c), C.int(ldc)); r != 0 {
		return fmt.Errorf("cublas: sgemm %dx%dx%d: status %d", m, n, k, int(r))
	}
	return nil
}

type (
	cDevice = C.int
	cHandle = C.uintptr_t
)
