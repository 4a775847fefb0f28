package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/storage"
	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/storage/crypt"
)

// putEvent is the start or the return of one Put.
type putEvent struct {
	key  string
	done bool
	err  error
}

// orderStore records, in order, when each Put starts and returns. Shard
// puts take a little time, longer for lower ranks, so that a manifest put
// issued too early would start before some shard put returned.
type orderStore struct {
	storage.Store
	mu     sync.Mutex
	events []putEvent
}

func (o *orderStore) record(e putEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *orderStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	o.record(putEvent{key: key})
	if !strings.HasSuffix(key, "/"+ckptManifest) {
		var rank int
		fmt.Sscanf(lastSeg(key), "rank%d", &rank)
		time.Sleep(time.Duration(8-rank) * time.Millisecond)
	}
	err := o.Store.Put(ctx, key, r, size)
	o.record(putEvent{key: key, done: true, err: err})
	return err
}

// TestManifestPutAfterShards: a checkpoint's manifest Put starts only
// after every shard's Put has returned (successfully), on the synchronous
// and the asynchronous path, sealed or not, with shards uploaded in
// parallel.
func TestManifestPutAfterShards(t *testing.T) {
	key, err := crypt.NewKey("k1", make([]byte, crypt.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		async bool
		opts  checkpoint.SaveOptions
	}{
		{"save", false, checkpoint.SaveOptions{}},
		{"save one at a time", false, checkpoint.SaveOptions{Concurrency: 1}},
		{"save sealed", false, checkpoint.SaveOptions{Key: key}},
		{"async", true, checkpoint.SaveOptions{Concurrency: 8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newFileStore(t)
			o := &orderStore{Store: s}
			st := testState("ft", 7, 6, 4096)
			if tc.async {
				w := checkpoint.NewAsyncWriter(o, checkpoint.AsyncOptions{Save: tc.opts})
				p, err := w.Save(t.Context(), st)
				if err != nil {
					t.Fatal(err)
				}
				if res, err := p.Wait(t.Context()); err != nil || res.Err != nil {
					t.Fatalf("async save: %v %v", err, res.Err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := checkpoint.Save(t.Context(), o, st, tc.opts); err != nil {
				t.Fatal(err)
			}
			checkManifestLast(t, o.events, len(st.Shards))
		})
	}
}

func checkManifestLast(t *testing.T, events []putEvent, shards int) {
	t.Helper()
	started, returned := map[string]bool{}, map[string]bool{}
	manifestStarts := 0
	for i, e := range events {
		isManifest := strings.HasSuffix(e.key, "/"+ckptManifest)
		switch {
		case isManifest && !e.done:
			manifestStarts++
			for k := range started {
				if !returned[k] {
					t.Fatalf("event %d: manifest put started while the put of %s had not returned (events %v)", i, k, events)
				}
			}
			if len(returned) != shards {
				t.Fatalf("event %d: manifest put started after %d of %d shard puts returned", i, len(returned), shards)
			}
		case !isManifest && !e.done:
			if manifestStarts > 0 {
				t.Fatalf("event %d: shard %s put after the manifest", i, e.key)
			}
			started[e.key] = true
		case !isManifest && e.done:
			if e.err != nil {
				t.Fatalf("shard %s: %v", e.key, e.err)
			}
			returned[e.key] = true
		}
	}
	if manifestStarts != 1 {
		t.Fatalf("%d manifest puts, want 1", manifestStarts)
	}
}

var errCrashed = errors.New("writer crashed")

// crashStore models a writer process that dies once its k-th shard put has
// returned: from then on nothing it does reaches the store (no later put,
// no cleanup delete). Puts already in flight at that moment may land or
// not, as on a real crash; reads go on working (they are the test's, or a
// reader's on another machine).
type crashStore struct {
	storage.Store
	k int

	mu      sync.Mutex
	shards  int // shard puts returned
	crashed bool
	dropped []string // writes refused after the crash
}

func (c *crashStore) dead(op, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		c.dropped = append(c.dropped, op+" "+key)
	}
	return c.crashed
}

func (c *crashStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if c.dead("put", key) {
		return errCrashed
	}
	err := c.Store.Put(ctx, key, r, size)
	if err == nil && !strings.HasSuffix(key, "/"+ckptManifest) {
		c.mu.Lock()
		c.shards++
		if c.shards == c.k {
			c.crashed = true
		}
		c.mu.Unlock()
	}
	return err
}

func (c *crashStore) Delete(ctx context.Context, key string) error {
	if c.dead("delete", key) {
		return errCrashed
	}
	return c.Store.Delete(ctx, key)
}

// TestCrashAfterEveryShard: whichever shard put a writer dies after, the
// checkpoint it was writing never looks complete to a reader (List, Open,
// Latest, Load): the job resumes from the one before. A writer that
// lives (k past the last shard) makes it complete, so the readers can
// tell.
func TestCrashAfterEveryShard(t *testing.T) {
	const world = 5
	for _, conc := range []int{1, 4} {
		for k := 1; k <= world+1; k++ {
			t.Run(fmt.Sprintf("concurrency %d crash after shard %d", conc, k), func(t *testing.T) {
				ctx := t.Context()
				s, _ := newFileStore(t)
				prev := testState("ft", 10, world, 512)
				if _, err := checkpoint.Save(ctx, s, prev, checkpoint.SaveOptions{}); err != nil {
					t.Fatal(err)
				}
				cs := &crashStore{Store: s, k: k}
				next := testState("ft", 20, world, 512)
				_, err := checkpoint.Save(ctx, cs, next, checkpoint.SaveOptions{Concurrency: conc})
				survived := k > world
				if survived != (err == nil) {
					t.Fatalf("Save = %v (dropped %v)", err, cs.dropped)
				}
				if !survived && !errors.Is(err, errCrashed) {
					t.Fatalf("Save = %v, want the crash", err)
				}

				// A reader, after the crash, on the store as the crash left it.
				infos, err := checkpoint.List(ctx, s, "ft")
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range infos {
					if in.Step == 20 && in.Complete != survived {
						t.Fatalf("List says step 20 complete=%v (%d objects)", in.Complete, in.Objects)
					}
				}
				_, err = checkpoint.Open(ctx, s, next.Ref(), nil)
				if survived != (err == nil) || (!survived && !errors.Is(err, checkpoint.ErrNotFound)) {
					t.Fatalf("Open(step 20) = %v", err)
				}
				c, err := checkpoint.Latest(ctx, s, "ft", nil)
				if err != nil {
					t.Fatalf("Latest: %v", err)
				}
				want := prev
				if survived {
					want = next
				}
				got, err := c.Load(ctx)
				if err != nil {
					t.Fatalf("load %s: %v", c.Ref, err)
				}
				equalStates(t, got, want)
			})
		}
	}
}
