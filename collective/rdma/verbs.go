package rdma

/*
#include <stdlib.h>

// The few libibverbs entry points used, declared here so no verbs.h is
// needed: devices and contexts are opaque pointers.
typedef void **(*ibv_get_device_list_fn)(int *num);
typedef void (*ibv_free_device_list_fn)(void **list);
typedef const char *(*ibv_get_device_name_fn)(void *dev);
typedef void *(*ibv_open_device_fn)(void *dev);
typedef int (*ibv_close_device_fn)(void *ctx);

static void **call_get_device_list(void *f, int *num) { return ((ibv_get_device_list_fn)f)(num); }
static void call_free_device_list(void *f, void **l) { ((ibv_free_device_list_fn)f)(l); }
static const char *call_get_device_name(void *f, void *d) { return ((ibv_get_device_name_fn)f)(d); }
static void *call_open_device(void *f, void *d) { return ((ibv_open_device_fn)f)(d); }
static int call_close_device(void *f, void *c) { return ((ibv_close_device_fn)f)(c); }
static void *dev_at(void **l, int i) { return l[i]; }

*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/ark-sched/ark/internal/dynlib"
)

// LibName is the library Load opens.
const LibName = "libibverbs.so.1"

// Sentinel errors.
var (
	ErrNoLibrary = errors.New("rdma: library not found")
	ErrNoDevice  = errors.New("rdma: no RDMA device")
)

// Lib is a loaded libibverbs.
type Lib struct {
	getList, freeList, getName, openDevice, closeDevice unsafe.Pointer
	// The data path (abi.go): exported functions only; the inline ones
	// (post_send, post_recv, poll_cq) go through the context's ops table.
	allocPDFn, deallocPDFn, regMR, deregMR             unsafe.Pointer
	createCQ, destroyCQ, createQP, modifyQP, destroyQP unsafe.Pointer
	queryPortFn, queryGIDFn                            unsafe.Pointer
}

var (
	loadOnce sync.Once
	loaded   *Lib
	loadErr  error
)

// Load opens libibverbs.so.1 once per process. Without it the error wraps
// ErrNoLibrary and reads "libibverbs.so.1 not found: <dlerror>".
func Load() (*Lib, error) {
	loadOnce.Do(func() { loaded, loadErr = open(LibName) })
	return loaded, loadErr
}

// open loads the library, preferring the IBVERBS_1.1 version of each
// symbol (the ABI the mirrors in abi.go follow) over the default one.
func open(name string) (*Lib, error) {
	l := &Lib{}
	err := dynlib.Open(name, "IBVERBS_1.1", ErrNoLibrary,
		dynlib.Sym{Name: "ibv_get_device_list", Dst: &l.getList}, dynlib.Sym{Name: "ibv_free_device_list", Dst: &l.freeList},
		dynlib.Sym{Name: "ibv_get_device_name", Dst: &l.getName}, dynlib.Sym{Name: "ibv_open_device", Dst: &l.openDevice},
		dynlib.Sym{Name: "ibv_close_device", Dst: &l.closeDevice},
		dynlib.Sym{Name: "ibv_alloc_pd", Dst: &l.allocPDFn}, dynlib.Sym{Name: "ibv_dealloc_pd", Dst: &l.deallocPDFn},
		dynlib.Sym{Name: "ibv_reg_mr", Dst: &l.regMR}, dynlib.Sym{Name: "ibv_dereg_mr", Dst: &l.deregMR},
		dynlib.Sym{Name: "ibv_create_cq", Dst: &l.createCQ}, dynlib.Sym{Name: "ibv_destroy_cq", Dst: &l.destroyCQ},
		dynlib.Sym{Name: "ibv_create_qp", Dst: &l.createQP}, dynlib.Sym{Name: "ibv_modify_qp", Dst: &l.modifyQP},
		dynlib.Sym{Name: "ibv_destroy_qp", Dst: &l.destroyQP},
		dynlib.Sym{Name: "ibv_query_port", Dst: &l.queryPortFn}, dynlib.Sym{Name: "ibv_query_gid", Dst: &l.queryGIDFn},
	)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// DeviceNames lists the devices libibverbs sees (e.g. mlx5_0).
func (l *Lib) DeviceNames() ([]string, error) {
	var n C.int
	list, errno := C.call_get_device_list(l.getList, &n)
	if list == nil {
		// rdma-core fails with ENOSYS when the kernel has no verbs support.
		return nil, fmt.Errorf("ibv_get_device_list failed (%v): %w", errnoOr(errno, -1), ErrNoDevice)
	}
	defer C.call_free_device_list(l.freeList, list)
	names := make([]string, 0, int(n))
	for i := range int(n) {
		names = append(names, C.GoString(C.call_get_device_name(l.getName, C.dev_at(list, C.int(i)))))
	}
	return names, nil
}

// Probe opens and closes every device, proving the user-space driver works.
func (l *Lib) Probe() error {
	var n C.int
	list := C.call_get_device_list(l.getList, &n)
	if list == nil || n == 0 {
		if list != nil {
			C.call_free_device_list(l.freeList, list)
		}
		return ErrNoDevice
	}
	defer C.call_free_device_list(l.freeList, list)
	for i := range int(n) {
		d := C.dev_at(list, C.int(i))
		ctx := C.call_open_device(l.openDevice, d)
		name := C.GoString(C.call_get_device_name(l.getName, d))
		if ctx == nil {
			return fmt.Errorf("ibv_open_device %s failed", name)
		}
		if rc := C.call_close_device(l.closeDevice, ctx); rc != 0 {
			return fmt.Errorf("ibv_close_device %s: %d", name, int(rc))
		}
	}
	return nil
}

// openContext opens the named device (the first one when name is empty)
// and returns its ibv_context and name.
func (l *Lib) openContext(name string) (unsafe.Pointer, string, error) {
	var n C.int
	list := C.call_get_device_list(l.getList, &n)
	if list == nil || n == 0 {
		if list != nil {
			C.call_free_device_list(l.freeList, list)
		}
		return nil, "", fmt.Errorf("libibverbs lists no device: %w", ErrNoDevice)
	}
	defer C.call_free_device_list(l.freeList, list)
	var seen []string
	for i := range int(n) {
		d := C.dev_at(list, C.int(i))
		dn := C.GoString(C.call_get_device_name(l.getName, d))
		seen = append(seen, dn)
		if name != "" && dn != name {
			continue
		}
		ctx, errno := C.call_open_device(l.openDevice, d)
		if ctx == nil {
			return nil, "", fmt.Errorf("ibv_open_device %s: %v", dn, errnoOr(errno, -1))
		}
		return ctx, dn, nil
	}
	return nil, "", fmt.Errorf("device %q not among %v: %w", name, seen, ErrNoDevice)
}

func (l *Lib) closeContext(ctx unsafe.Pointer) error {
	if rc := C.call_close_device(l.closeDevice, ctx); rc != 0 {
		return fmt.Errorf("ibv_close_device: %d", int(rc))
	}
	return nil
}
