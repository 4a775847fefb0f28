// Package dynlib opens a shared library at run time and resolves the
// symbols a wrapper calls through, as go-nvml loads NVML: the build links
// nothing, and a machine without the library gets an error, not a crash.
// collective/nccl (libnccl.so.2) and collective/rdma (libibverbs.so.1) use
// it; the returned pointers are C function pointers their cgo shims call.
package dynlib

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

static void *dynlib_open(const char *name) { return dlopen(name, RTLD_NOW | RTLD_LOCAL); }

// dynlib_sym prefers the given symbol version (where glibc can ask for
// one) and falls back to the default version.
static void *dynlib_sym(void *h, const char *name, const char *version) {
	void *p = NULL;
#ifdef __GLIBC__
	if (version) p = dlvsym(h, name, version);
#endif
	return p ? p : dlsym(h, name);
}
static const char *dynlib_error(void) { const char *e = dlerror(); return e ? e : "unknown dlopen error"; }
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Sym is a symbol to resolve and where its address goes.
type Sym struct {
	Name string
	Dst  *unsafe.Pointer
}

// Open loads library name and resolves every symbol, at version when it is
// not empty (e.g. "IBVERBS_1.1"). A missing library reads "NAME not found:
// <dlerror>" and a missing symbol "NAME: symbol S missing"; both wrap
// notFound, the caller's sentinel. The library stays loaded for the
// process's life once every symbol resolved.
func Open(name, version string, notFound error, syms ...Sym) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	h := C.dynlib_open(cname)
	if h == nil {
		return fmt.Errorf("%s not found: %s: %w", name, C.GoString(C.dynlib_error()), notFound)
	}
	var cver *C.char
	if version != "" {
		cver = C.CString(version)
		defer C.free(unsafe.Pointer(cver))
	}
	for _, s := range syms {
		cs := C.CString(s.Name)
		p := C.dynlib_sym(h, cs, cver)
		C.free(unsafe.Pointer(cs))
		if p == nil {
			C.dlclose(h)
			return fmt.Errorf("%s: symbol %s missing: %w", name, s.Name, notFound)
		}
		*s.Dst = p
	}
	return nil
}
