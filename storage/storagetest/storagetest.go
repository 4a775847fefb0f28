package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
)

// Options tunes the suite for a backend.
type Options struct {
	// LargeSize is the size of the object used to exercise multipart
	// uploads; it should span several parts. Default 12 MiB.
	LargeSize int
}

// Run runs the conformance suite. newStore must return an empty store (a
// fresh directory, a fresh bucket prefix) each time it is called.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	RunWithOptions(t, newStore, Options{})
}

// RunWithOptions is Run with options.
func RunWithOptions(t *testing.T, newStore func(t *testing.T) storage.Store, o Options) {
	if o.LargeSize == 0 {
		o.LargeSize = 12 << 20
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store, o Options)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"SizeMismatch", testSizeMismatch},
		{"AbortedUpload", testAbortedUpload},
		{"CancelledUpload", testCancelledUpload},
		{"RangedGet", testRangedGet},
		{"NotFound", testNotFound},
		{"List", testList},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t), o)
		})
	}
}

// Payload returns n deterministic pseudo-random bytes.
func Payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// unsized hides the length of a reader (no Len, Size, Seek or WriterTo), so
// the backend must treat it as a stream of unknown size.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustPut(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctx(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", key, len(data), err)
	}
}

func mustGet(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	b, err := storage.ReadAll(ctx(t), s, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return b
}

func checkNoIncomplete(t *testing.T, s storage.Store, prefix string) {
	t.Helper()
	il, ok := s.(storage.IncompleteLister)
	if !ok {
		return
	}
	keys, err := il.ListIncomplete(ctx(t), prefix)
	if err != nil {
		t.Fatalf("ListIncomplete: %v", err)
	}
	if len(keys) > 0 {
		t.Errorf("dangling incomplete uploads after Put returned: %v", keys)
	}
}

func checkAbsent(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if _, err := s.Stat(ctx(t), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%s) after failed put = %v, want ErrNotFound", key, err)
	}
}

func testPutGet(t *testing.T, s storage.Store, o Options) {
	sizes := []int{0, 1, 1000, 1 << 20, o.LargeSize + 12345}
	for i, n := range sizes {
		for _, mode := range []string{"seekable", "stream-known-size", "stream-unknown-size"} {
			t.Run(fmt.Sprintf("size=%d/%s", n, mode), func(t *testing.T) {
				key := fmt.Sprintf("obj/%d-%s", i, mode)
				data := Payload(uint64(n), n)
				var r io.Reader = bytes.NewReader(data)
				size := int64(n)
				switch mode {
				case "stream-known-size":
					r = unsized{r}
				case "stream-unknown-size":
					r, size = unsized{r}, -1
				}
				if err := s.Put(ctx(t), key, r, size); err != nil {
					t.Fatalf("Put: %v", err)
				}
				if got := mustGet(t, s, key); !bytes.Equal(got, data) {
					t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(data))
				}
				fi, err := s.Stat(ctx(t), key)
				if err != nil {
					t.Fatalf("Stat: %v", err)
				}
				if fi.Key != key || fi.Size != int64(n) {
					t.Errorf("Stat = {%q, %d}, want {%q, %d}", fi.Key, fi.Size, key, n)
				}
				if fi.ModTime.IsZero() {
					t.Errorf("Stat ModTime is zero")
				}
			})
		}
	}
	checkNoIncomplete(t, s, "")
}

func testOverwrite(t *testing.T, s storage.Store, o Options) {
	mustPut(t, s, "k", []byte("first version"))
	mustPut(t, s, "k", []byte("second"))
	if got := string(mustGet(t, s, "k")); got != "second" {
		t.Fatalf("after overwrite Get = %q, want %q", got, "second")
	}
}

func testSizeMismatch(t *testing.T, s storage.Store, o Options) {
	for _, n := range []int64{5, 9, 11, 20, int64(o.LargeSize)} {
		if err := s.Put(ctx(t), "short", bytes.NewReader(make([]byte, 10)), n); err == nil {
			t.Errorf("Put of 10 seekable bytes announced as %d succeeded", n)
		}
		if err := s.Put(ctx(t), "short", unsized{bytes.NewReader(make([]byte, 10))}, n); err == nil {
			t.Errorf("Put of a 10-byte stream announced as %d succeeded", n)
		}
	}
	big := int64(o.LargeSize + 100)
	if err := s.Put(ctx(t), "short", unsized{bytes.NewReader(make([]byte, big))}, big-50); err == nil {
		t.Errorf("Put of a %d-byte stream announced as %d succeeded", big, big-50)
	}
	checkAbsent(t, s, "short")
	checkNoIncomplete(t, s, "")
}

// failingReader yields n bytes and then fails.
type failingReader struct {
	r   io.Reader
	n   int64
	err error
}

var errSource = errors.New("storagetest: source failed")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func testAbortedUpload(t *testing.T, s storage.Store, o Options) {
	data := Payload(7, o.LargeSize+1000)
	cases := []struct {
		name string
		stop int64
	}{
		{"before-first-byte", 0},
		{"mid-first-part", 1 << 20},
		{"after-several-parts", int64(o.LargeSize)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustPut(t, s, "keep", []byte("previous"))
			r := &failingReader{r: bytes.NewReader(data), n: c.stop, err: errSource}
			err := s.Put(ctx(t), "keep", unsized{r}, -1)
			if !errors.Is(err, errSource) {
				t.Fatalf("Put with failing reader = %v, want it to wrap the reader's error", err)
			}
			if got := string(mustGet(t, s, "keep")); got != "previous" {
				t.Fatalf("aborted put replaced the object: got %d bytes", len(got))
			}
			err = s.Put(ctx(t), "new", unsized{&failingReader{r: bytes.NewReader(data), n: c.stop, err: errSource}}, -1)
			if err == nil {
				t.Fatalf("Put with failing reader succeeded")
			}
			checkAbsent(t, s, "new")
			checkNoIncomplete(t, s, "")
		})
	}
}

// cancelReader cancels a context after n bytes.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func testCancelledUpload(t *testing.T, s storage.Store, o Options) {
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	data := Payload(8, o.LargeSize)
	err := s.Put(c, "cancelled", unsized{&cancelReader{r: bytes.NewReader(data), n: 2 << 20, cancel: cancel}}, -1)
	if err == nil {
		t.Fatalf("Put with a context cancelled mid-stream succeeded")
	}
	checkAbsent(t, s, "cancelled")
	checkNoIncomplete(t, s, "")
}

func testRangedGet(t *testing.T, s storage.Store, o Options) {
	data := Payload(9, 100_000)
	mustPut(t, s, "r", data)
	n := int64(len(data))
	tests := []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, data},
		{0, n, data},
		{0, 1, data[:1]},
		{10, 100, data[10:110]},
		{n - 1, -1, data[n-1:]},
		{n - 10, 100, data[n-10:]},
		{5000, 0, nil},
		{n, -1, nil},
	}
	for _, tt := range tests {
		rc, err := s.Get(ctx(t), "r", tt.off, tt.length)
		if err != nil {
			t.Errorf("Get(off=%d, len=%d): %v", tt.off, tt.length, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Errorf("Get(off=%d, len=%d) read: %v", tt.off, tt.length, err)
			continue
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("Get(off=%d, len=%d) = %d bytes, want %d", tt.off, tt.length, len(got), len(tt.want))
		}
	}
	if _, err := s.Get(ctx(t), "r", n+1, -1); !errors.Is(err, storage.ErrInvalidRange) {
		t.Errorf("Get past the end = %v, want ErrInvalidRange", err)
	}
}

func testNotFound(t *testing.T, s storage.Store, o Options) {
	if _, err := s.Get(ctx(t), "missing/x", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx(t), "missing/x", 10, 5); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ranged Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx(t), "missing/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	mustPut(t, s, "dir/file", []byte("x"))
	if _, err := s.Stat(ctx(t), "dir"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a key prefix = %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s storage.Store, o Options) {
	keys := []string{"a/b/1", "a/b/2", "a/c", "ab", "b/x/y/z", "abc/d"}
	for i, k := range keys {
		mustPut(t, s, k, bytes.Repeat([]byte{'x'}, i))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a/b/1", "a/b/2", "a/c", "ab", "abc/d", "b/x/y/z"}},
		{"a", []string{"a/b/1", "a/b/2", "a/c", "ab", "abc/d"}},
		{"a/", []string{"a/b/1", "a/b/2", "a/c"}},
		{"a/b", []string{"a/b/1", "a/b/2"}},
		{"a/b/", []string{"a/b/1", "a/b/2"}},
		{"a/b/1", []string{"a/b/1"}},
		{"ab", []string{"ab", "abc/d"}},
		{"b/x/", []string{"b/x/y/z"}},
		{"c", nil},
		{"zz/", nil},
	}
	for _, tt := range tests {
		infos, err := s.List(ctx(t), tt.prefix)
		if err != nil {
			t.Errorf("List(%q): %v", tt.prefix, err)
			continue
		}
		var got []string
		for _, fi := range infos {
			got = append(got, fi.Key)
			if want := int64(slices.Index(keys, fi.Key)); fi.Size != want {
				t.Errorf("List(%q): %s has size %d, want %d", tt.prefix, fi.Key, fi.Size, want)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

func testDelete(t *testing.T, s storage.Store, o Options) {
	mustPut(t, s, "d/1", []byte("1"))
	mustPut(t, s, "d/2", []byte("2"))
	if err := s.Delete(ctx(t), "d/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkAbsent(t, s, "d/1")
	if err := s.Delete(ctx(t), "d/1"); err != nil {
		t.Errorf("Delete of a missing object = %v, want nil", err)
	}
	infos, err := s.List(ctx(t), "d/")
	if err != nil || len(infos) != 1 || infos[0].Key != "d/2" {
		t.Errorf("List after delete = %v, %v; want [d/2]", infos, err)
	}
	if err := s.Delete(ctx(t), "d/2"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// The emptied "directory" must not block a later put under it.
	mustPut(t, s, "d/3", []byte("3"))
}

func testInvalidKeys(t *testing.T, s storage.Store, o Options) {
	for _, key := range []string{"", "/abs", "a//b", "../up", "a/./b", "trail/"} {
		if err := s.Put(ctx(t), key, bytes.NewReader(nil), 0); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctx(t), key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx(t), key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}

func testConcurrentPuts(t *testing.T, s storage.Store, o Options) {
	const writers = 4
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = Payload(uint64(100+i), 256<<10+i)
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			for range 3 {
				if err := s.Put(ctx(t), "same", unsized{bytes.NewReader(versions[i])}, -1); err != nil {
					errs[i] = err
					return
				}
			}
		})
		wg.Go(func() {
			key := fmt.Sprintf("own/%d", i)
			if err := s.Put(ctx(t), key, bytes.NewReader(versions[i]), int64(len(versions[i]))); err != nil {
				t.Errorf("Put(%s): %v", key, err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	got := mustGet(t, s, "same")
	if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
		t.Fatalf("concurrent puts left a torn object of %d bytes", len(got))
	}
	for i := range writers {
		if got := mustGet(t, s, fmt.Sprintf("own/%d", i)); !bytes.Equal(got, versions[i]) {
			t.Errorf("own/%d corrupted", i)
		}
	}
	checkNoIncomplete(t, s, "")
}
