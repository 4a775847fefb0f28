//go:build linux

package collective

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// ShmTransport connects ranks on the same node through rings in mmap'd files
// under Dir (default /dev/shm). Each direction of each (pair, channel) is one
// file owned by its producer: a header of cache-line-separated counters and a
// power-of-two data ring. Waiting spins briefly and then sleeps on a futex in
// the shared mapping, so no process burns a core while idle.
type ShmTransport struct {
	Dir       string // default /dev/shm
	RingBytes int    // data bytes per direction and channel, power of two (default 1 MiB)
}

// Name implements Transport.
func (t *ShmTransport) Name() string { return "shm" }

// Header layout (byte offsets); each hot word has its own cache line.
const (
	shmMagic       = 0x41524b53484d3031 // "ARKSHM01"
	shmOffMagic    = 0                  // uint64, written last by the producer
	shmOffSize     = 8                  // uint64 ring size
	shmOffHead     = 64                 // uint64 bytes produced
	shmOffDataSeq  = 128                // uint32 futex word, bumped per publish
	shmOffConsWait = 132                // uint32 consumer sleeping on DataSeq
	shmOffTail     = 192                // uint64 bytes consumed
	shmOffSpaceSeq = 256                // uint32 futex word, bumped per consume
	shmOffProdWait = 260                // uint32 producer sleeping on SpaceSeq
	shmOffClosed   = 320                // uint32 bit 1: producer closed, bit 2: consumer closed
	shmHeader      = 4096
)

// Listen implements Transport.
func (t *ShmTransport) Listen(_ context.Context, self Self) (Endpoint, error) {
	dir := t.Dir
	if dir == "" {
		dir = "/dev/shm"
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("shm dir %s: not a directory: %v", dir, err)
	}
	size := t.RingBytes
	if size == 0 {
		size = 1 << 20
	}
	if size < 4096 || size&(size-1) != 0 {
		return nil, fmt.Errorf("shm ring size %d: must be a power of two >= 4096: %w", size, ErrInvalid)
	}
	return &shmEndpoint{self: self, dir: dir, size: size}, nil
}

type shmEndpoint struct {
	self Self
	dir  string
	size int
}

// Addr is the directory: peers must share it (same node, same /dev/shm).
func (e *shmEndpoint) Addr() string { return e.dir }

func (e *shmEndpoint) path(from, to, ch int) string {
	return filepath.Join(e.dir, fmt.Sprintf("ark-coll-%s-%d-%d-%d", e.self.Session, from, to, ch))
}

// Connect creates this side's send ring and maps the peer's, waiting for it
// to appear. The consumer unlinks the producer's file once mapped, so no file
// outlives the connection (a crashed producer's file is removed by Close of
// the consumer's next attach or by the OS on reboot).
func (e *shmEndpoint) Connect(ctx context.Context, peer int, peerAddr string, ch int) (Conn, error) {
	if peerAddr != e.dir {
		return nil, fmt.Errorf("shm connect to rank %d: peer uses %q, not %q (not on this node?): %w", peer, peerAddr, e.dir, ErrInvalid)
	}
	txPath := e.path(e.self.Rank, peer, ch)
	tx, err := shmCreate(txPath, e.size)
	if err != nil {
		return nil, err
	}
	rxPath := e.path(peer, e.self.Rank, ch)
	var rx []byte
	for {
		rx, err = shmAttach(rxPath)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errShmNotReady) {
			break
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("wait for rank %d: %w", peer, ctx.Err())
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	if err != nil {
		_ = syscall.Munmap(tx)
		_ = os.Remove(txPath)
		return nil, fmt.Errorf("shm connect to rank %d ch %d: %w", peer, ch, err)
	}
	_ = os.Remove(rxPath)
	return &shmConn{tx: newShmRing(tx), rx: newShmRing(rx), txPath: txPath, spin: int(shmSpin)}, nil
}

func (e *shmEndpoint) Close() error { return nil }

var errShmNotReady = errors.New("shm ring not initialised yet")

func shmCreate(path string, size int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shm create: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(shmHeader + size)); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("shm size %s: %w", path, err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, shmHeader+size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("shm mmap %s: %w", path, err)
	}
	atomic.StoreUint64(u64(m, shmOffSize), uint64(size))
	atomic.StoreUint64(u64(m, shmOffMagic), shmMagic)
	return m, nil
}

func shmAttach(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() <= shmHeader {
		return nil, errShmNotReady
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm mmap %s: %w", path, err)
	}
	if atomic.LoadUint64(u64(m, shmOffMagic)) != shmMagic ||
		int64(atomic.LoadUint64(u64(m, shmOffSize)))+shmHeader != st.Size() {
		_ = syscall.Munmap(m)
		return nil, errShmNotReady
	}
	return m, nil
}

func u64(m []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&m[off])) }
func u32(m []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&m[off])) }

type shmRing struct {
	m    []byte
	data []byte
	mask uint64
}

func newShmRing(m []byte) shmRing {
	size := atomic.LoadUint64(u64(m, shmOffSize))
	return shmRing{m: m, data: m[shmHeader : shmHeader+int(size)], mask: size - 1}
}

type shmConn struct {
	tx, rx shmRing
	txPath string
	spin   int // yields before sleeping

	deadline atomic.Int64 // unix nanos; 0 = none
	// users counts Send/Recv calls in flight; Close waits for them before
	// unmapping, after waking them.
	mu     sync.RWMutex
	closed atomic.Bool
	cs     copySink // Recv's sink; Recv is called by one goroutine at a time
	tmp    [8]byte  // an element split by the wrap-around
	once   sync.Once
}

// shmSpin is how many times a waiter yields before sleeping on the futex
// (ARK_COLL_SHM_SPIN, default 64, about 10 us). Spinning saves the futex
// wake-up when the peer runs on another core. With 4 ranks on 2 cores,
// 0 measured slightly better latency and worse bandwidth; the default stays.
var shmSpin = func() int32 {
	if v, err := strconv.Atoi(os.Getenv("ARK_COLL_SHM_SPIN")); err == nil && v >= 0 {
		return int32(v)
	}
	return 64
}()

func (c *shmConn) checkWait(r *shmRing, peerClosedBit uint32) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if atomic.LoadUint32(u32(r.m, shmOffClosed))&peerClosedBit != 0 {
		return io.EOF
	}
	if d := c.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// sleepOn waits on a futex word until it changes, a bounded slice of time
// passes, or the deadline hits (checked by the caller).
func (c *shmConn) sleepOn(word *uint32, seen uint32) {
	slice := int64(20 * time.Millisecond)
	if d := c.deadline.Load(); d != 0 {
		if left := d - time.Now().UnixNano(); left < slice {
			slice = max(left, 1000)
		}
	}
	futexWait(word, seen, slice)
}

// Send implements Conn.
func (c *shmConn) Send(p []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return ErrClosed // unmapped
	}
	r := &c.tx
	size := uint64(len(r.data))
	head := atomic.LoadUint64(u64(r.m, shmOffHead))
	for len(p) > 0 {
		var space uint64
		for i := 0; ; i++ {
			space = size - (head - atomic.LoadUint64(u64(r.m, shmOffTail)))
			if space > 0 {
				break
			}
			if err := c.checkWait(r, 2); err != nil {
				return err
			}
			if i < c.spin {
				runtime.Gosched()
				continue
			}
			seq := atomic.LoadUint32(u32(r.m, shmOffSpaceSeq))
			atomic.StoreUint32(u32(r.m, shmOffProdWait), 1)
			if head-atomic.LoadUint64(u64(r.m, shmOffTail)) == size {
				c.sleepOn(u32(r.m, shmOffSpaceSeq), seq)
			}
			atomic.StoreUint32(u32(r.m, shmOffProdWait), 0)
		}
		n := min(uint64(len(p)), space)
		off := head & r.mask
		k := copy(r.data[off:min(off+n, size)], p[:n])
		copy(r.data, p[k:n])
		head += n
		p = p[n:]
		atomic.StoreUint64(u64(r.m, shmOffHead), head)
		atomic.AddUint32(u32(r.m, shmOffDataSeq), 1)
		if atomic.LoadUint32(u32(r.m, shmOffConsWait)) != 0 {
			futexWake(u32(r.m, shmOffDataSeq))
		}
	}
	return nil
}

// Recv implements Conn.
func (c *shmConn) Recv(p []byte) error {
	c.cs.p = p
	err := c.RecvInPlace(len(p), 1, &c.cs)
	c.cs.p = nil
	return err
}

type copySink struct{ p []byte }

func (s *copySink) sink(off int, seg []byte) { copy(s.p[off:], seg) }

// RecvInPlace implements inPlaceReceiver: s reads straight from the ring.
// n must be a multiple of align (at most 8); an element split by the ring's
// wrap-around is reassembled in a small buffer.
func (c *shmConn) RecvInPlace(n, align int, s segSink) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return ErrClosed // unmapped
	}
	r := &c.rx
	size := uint64(len(r.data))
	al := uint64(align)
	tail := atomic.LoadUint64(u64(r.m, shmOffTail))
	done := 0
	for done < n {
		var avail uint64
		for i := 0; ; i++ {
			avail = atomic.LoadUint64(u64(r.m, shmOffHead)) - tail
			if avail >= al {
				break
			}
			if err := c.checkWait(r, 1); err != nil {
				return err
			}
			if i < c.spin {
				runtime.Gosched()
				continue
			}
			seq := atomic.LoadUint32(u32(r.m, shmOffDataSeq))
			atomic.StoreUint32(u32(r.m, shmOffConsWait), 1)
			if atomic.LoadUint64(u64(r.m, shmOffHead))-tail < al {
				c.sleepOn(u32(r.m, shmOffDataSeq), seq)
			}
			atomic.StoreUint32(u32(r.m, shmOffConsWait), 0)
		}
		m := min(uint64(n-done), avail)
		m -= m % al
		off := tail & r.mask
		first := min(m, size-off)
		if rem := first % al; rem != 0 {
			// An element straddles the end of the ring.
			a := first - rem
			if a > 0 {
				s.sink(done, r.data[off:off+a])
			}
			k := copy(c.tmp[:], r.data[off+a:size])
			copy(c.tmp[k:al], r.data[:al-uint64(k)])
			s.sink(done+int(a), c.tmp[:al])
			if rest := m - a - al; rest > 0 {
				s.sink(done+int(a+al), r.data[al-uint64(k):al-uint64(k)+rest])
			}
		} else {
			s.sink(done, r.data[off:off+first])
			if first < m {
				s.sink(done+int(first), r.data[:m-first])
			}
		}
		tail += m
		done += int(m)
		atomic.StoreUint64(u64(r.m, shmOffTail), tail)
		atomic.AddUint32(u32(r.m, shmOffSpaceSeq), 1)
		if atomic.LoadUint32(u32(r.m, shmOffProdWait)) != 0 {
			futexWake(u32(r.m, shmOffSpaceSeq))
		}
	}
	return nil
}

// SetDeadline implements Conn; a past deadline wakes sleeping calls.
func (c *shmConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		c.deadline.Store(0)
		return nil
	}
	c.deadline.Store(t.UnixNano())
	if !t.After(time.Now()) {
		c.wake()
	}
	return nil
}

func (c *shmConn) wake() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return
	}
	futexWake(u32(c.tx.m, shmOffSpaceSeq))
	futexWake(u32(c.rx.m, shmOffDataSeq))
}

// Close marks both rings closed for the peer, wakes local waiters, waits for
// them to leave and unmaps.
func (c *shmConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		atomic.OrUint32(u32(c.tx.m, shmOffClosed), 1)
		atomic.OrUint32(u32(c.rx.m, shmOffClosed), 2)
		atomic.AddUint32(u32(c.tx.m, shmOffDataSeq), 1)
		atomic.AddUint32(u32(c.rx.m, shmOffSpaceSeq), 1)
		futexWake(u32(c.tx.m, shmOffDataSeq))
		futexWake(u32(c.rx.m, shmOffSpaceSeq))
		futexWake(u32(c.tx.m, shmOffSpaceSeq))
		futexWake(u32(c.rx.m, shmOffDataSeq))
		c.mu.Lock()
		_ = syscall.Munmap(c.tx.m)
		_ = syscall.Munmap(c.rx.m)
		c.mu.Unlock()
		_ = os.Remove(c.txPath)
	})
	return nil
}

const (
	futexWaitOp = 0 // FUTEX_WAIT, shared (not PRIVATE): the word is in a MAP_SHARED file
	futexWakeOp = 1
)

func futexWait(addr *uint32, val uint32, ns int64) {
	ts := syscall.NsecToTimespec(ns)
	_, _, _ = syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

func futexWake(addr *uint32) {
	_, _, _ = syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, 1<<30, 0, 0, 0)
}
