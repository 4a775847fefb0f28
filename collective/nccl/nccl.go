package nccl

/*
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef struct { char internal[128]; } ncclUniqueId;
typedef void *ncclComm_t;
typedef int ncclResult_t;

typedef ncclResult_t (*getVersion_fn)(int *);
typedef ncclResult_t (*getUniqueId_fn)(ncclUniqueId *);
typedef ncclResult_t (*commInitRank_fn)(ncclComm_t *, int, ncclUniqueId, int);
typedef ncclResult_t (*allReduce_fn)(const void *, void *, size_t, int, int, ncclComm_t, void *);
typedef ncclResult_t (*commDestroy_fn)(ncclComm_t);
typedef ncclResult_t (*commAbort_fn)(ncclComm_t);
typedef const char *(*getErrorString_fn)(ncclResult_t);

static int call_getVersion(void *f, int *v) { return ((getVersion_fn)f)(v); }
static int call_getUniqueId(void *f, ncclUniqueId *id) { return ((getUniqueId_fn)f)(id); }
static int call_commInitRank(void *f, ncclComm_t *c, int n, ncclUniqueId *id, int r) { return ((commInitRank_fn)f)(c, n, *id, r); }
// Device pointers and the stream arrive as integers: they are not Go memory.
static int call_allReduce(void *f, uintptr_t s, uintptr_t r, size_t n, int dt, int op, ncclComm_t c, uintptr_t st) { return ((allReduce_fn)f)((const void *)s, (void *)r, n, dt, op, c, (void *)st); }
static int call_commDestroy(void *f, ncclComm_t c) { return ((commDestroy_fn)f)(c); }
static int call_commAbort(void *f, ncclComm_t c) { return ((commAbort_fn)f)(c); }
static const char *call_getErrorString(void *f, int r) { return ((getErrorString_fn)f)(r); }

*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/internal/dynlib"
)

// LibName is the library Load opens.
const LibName = "libnccl.so.2"

// ErrNoLibrary is wrapped when libnccl cannot be loaded.
var ErrNoLibrary = errors.New("nccl: library not found")

// DataType mirrors ncclDataType_t.
type DataType int

// Data types (values of nccl.h).
const (
	Float32  DataType = 7
	BFloat16 DataType = 9
)

// RedOp mirrors ncclRedOp_t.
type RedOp int

// Reductions (values of nccl.h).
const (
	Sum RedOp = 0
	Max RedOp = 2
	Avg RedOp = 4 // NCCL >= 2.10
)

// UniqueID is ncclUniqueId.
type UniqueID [128]byte

// Lib is a loaded libnccl.
type Lib struct {
	getVersion, getUniqueID, commInitRank, allReduce, commDestroy, commAbort, errString unsafe.Pointer
}

var (
	loadOnce sync.Once
	loaded   *Lib
	loadErr  error
)

// Load opens libnccl.so.2 once per process. Without it the error wraps
// ErrNoLibrary and reads "libnccl.so.2 not found: <dlerror>".
func Load() (*Lib, error) {
	loadOnce.Do(func() { loaded, loadErr = open(LibName) })
	return loaded, loadErr
}

func open(name string) (*Lib, error) {
	l := &Lib{}
	err := dynlib.Open(name, "", ErrNoLibrary,
		dynlib.Sym{Name: "ncclGetVersion", Dst: &l.getVersion}, dynlib.Sym{Name: "ncclGetUniqueId", Dst: &l.getUniqueID},
		dynlib.Sym{Name: "ncclCommInitRank", Dst: &l.commInitRank}, dynlib.Sym{Name: "ncclAllReduce", Dst: &l.allReduce},
		dynlib.Sym{Name: "ncclCommDestroy", Dst: &l.commDestroy}, dynlib.Sym{Name: "ncclCommAbort", Dst: &l.commAbort},
		dynlib.Sym{Name: "ncclGetErrorString", Dst: &l.errString},
	)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lib) check(what string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	return fmt.Errorf("%s: nccl error %d: %s", what, int(rc), C.GoString(C.call_getErrorString(l.errString, rc)))
}

// Version is NCCL's version code (e.g. 22105 for 2.21.5).
func (l *Lib) Version() (int, error) {
	var v C.int
	if err := l.check("ncclGetVersion", C.call_getVersion(l.getVersion, &v)); err != nil {
		return 0, err
	}
	return int(v), nil
}

// NewUniqueID makes the id rank 0 shares with the others.
func (l *Lib) NewUniqueID() (UniqueID, error) {
	var id C.ncclUniqueId
	var out UniqueID
	if err := l.check("ncclGetUniqueId", C.call_getUniqueId(l.getUniqueID, &id)); err != nil {
		return out, err
	}
	copy(out[:], C.GoBytes(unsafe.Pointer(&id), C.int(len(out))))
	return out, nil
}

// Comm is an NCCL communicator.
type Comm struct {
	l    *Lib
	c    C.ncclComm_t
	once sync.Once
}

// InitRank joins the NCCL communicator identified by id (collective call;
// the caller has selected the rank's CUDA device).
func (l *Lib) InitRank(nranks int, id UniqueID, rank int) (*Comm, error) {
	var cid C.ncclUniqueId
	C.memcpy(unsafe.Pointer(&cid), unsafe.Pointer(&id[0]), C.size_t(len(id)))
	var c C.ncclComm_t
	if err := l.check("ncclCommInitRank", C.call_commInitRank(l.commInitRank, &c, C.int(nranks), &cid, C.int(rank))); err != nil {
		return nil, err
	}
	return &Comm{l: l, c: c}, nil
}

// Bootstrap builds an NCCL communicator over the ranks of c: rank 0 makes
// the unique id and broadcasts it through c.
func Bootstrap(ctx context.Context, l *Lib, c *collective.Communicator) (*Comm, error) {
	var id UniqueID
	if c.Rank() == 0 {
		var err error
		if id, err = l.NewUniqueID(); err != nil {
			return nil, err
		}
	}
	buf, err := collective.Bytes(collective.Float32, id[:]) // bytes, copied bit for bit
	if err != nil {
		return nil, err
	}
	if err := c.Broadcast(ctx, buf, 0); err != nil {
		return nil, fmt.Errorf("broadcast nccl unique id: %w", err)
	}
	return l.InitRank(c.Size(), id, c.Rank())
}

// AllReduce enqueues an all-reduce of count elements from send to recv
// (device pointers; equal for in place) on stream (a cudaStream_t, 0 for
// the default stream). It returns once enqueued, as NCCL does.
func (c *Comm) AllReduce(send, recv uintptr, count int, dt DataType, op RedOp, stream uintptr) error {
	return c.l.check("ncclAllReduce", C.call_allReduce(c.l.allReduce,
		C.uintptr_t(send), C.uintptr_t(recv), C.size_t(count), C.int(dt), C.int(op), c.c, C.uintptr_t(stream)))
}

// Abort tears the communicator down without waiting for peers (after a fault).
func (c *Comm) Abort() error {
	var err error
	c.once.Do(func() { err = c.l.check("ncclCommAbort", C.call_commAbort(c.l.commAbort, c.c)) })
	return err
}

// Close destroys the communicator. Idempotent.
func (c *Comm) Close() error {
	var err error
	c.once.Do(func() { err = c.l.check("ncclCommDestroy", C.call_commDestroy(c.l.commDestroy, c.c)) })
	return err
}
