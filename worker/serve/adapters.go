package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ark-sched/ark/worker/train"
)

// Errors of the adapter registry; match with errors.Is.
var (
	// ErrUnknownAdapter: no adapter of that name is registered.
	ErrUnknownAdapter = errors.New("serve: unknown adapter")
	// ErrAdapterConflict: the name is taken by another adapter (or the base).
	ErrAdapterConflict = errors.New("serve: adapter name taken")
	// ErrAdapterUnavailable: the adapter's checkpoint could not be loaded.
	ErrAdapterUnavailable = errors.New("serve: adapter unavailable")
)

// AdapterLoader reads an adapter checkpoint from the object store into host
// memory (train.ReadAdapter, with the namespace's keys).
type AdapterLoader func(ctx context.Context, uri string) (*train.AdapterWeights, error)

// Adapter tiers, as GET /v1/adapters reports them.
const (
	TierActive  = "active"  // in a compute slot: requests run at once
	TierHost    = "host"    // in the host LRU cache: a slot upload away
	TierStore   = "store"   // only in the object store: a fetch away
	TierLoading = "loading" // being fetched
	TierFailed  = "failed"  // the last fetch failed (see Error)
)

// AdapterInfo describes a registered adapter.
type AdapterInfo struct {
	Name   string `json:"name"`
	URI    string `json:"uri"`
	Tier   string `json:"tier"`
	Pinned bool   `json:"pinned,omitempty"`
	Rank   int    `json:"rank,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Step   int64  `json:"step,omitempty"`
	Error  string `json:"error,omitempty"`
}

// adapter is one registered adapter across the three tiers. Every field
// is guarded by the registry's mutex; slot and refs change only on the
// engine's goroutine.
type adapter struct {
	name, uri string
	pinned    bool
	weights   *train.AdapterWeights // host tier; nil when not cached
	loading   chan struct{}         // non-nil while a fetch runs; closed when it ends
	err       error                 // the last fetch's failure
	used      uint64                // LRU clock of the host tier
	removed   bool
	slot      int // compute slot, -1 for none
	refs      int // requests admitted into the slot and not finished
}

// registry holds the served adapters: registered by name, cached in host
// memory up to hostCap unpinned ones (least recently used evicted first,
// never one in a compute slot), fetched from the object store in the
// background: a fetch never holds up requests for other adapters.
type registry struct {
	base, baseSHA string // the base's served name and parameter checksum
	cfg           train.Config
	load          AdapterLoader
	hostCap       int
	wake          func() // tells the engine a fetch ended

	mu      sync.Mutex
	byName  map[string]*adapter
	clock   uint64
	fetches sync.WaitGroup
	ctx     context.Context // fetches stop with it
}

func newRegistry(ctx context.Context, base, baseSHA string, cfg train.Config, load AdapterLoader, hostCap int, wake func()) *registry {
	return &registry{base: base, baseSHA: baseSHA, cfg: cfg, load: load, hostCap: max(1, hostCap), wake: wake, byName: map[string]*adapter{}, ctx: ctx}
}

// add registers name at uri and starts fetching it. Registering the same
// name and uri again is a no-op; another uri under a taken name is
// ErrAdapterConflict.
func (r *registry) add(name, uri string, pinned bool) (*adapter, error) {
	if name == r.base {
		return nil, fmt.Errorf("%w: %q is the base model", ErrAdapterConflict, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.byName[name]; a != nil {
		if a.uri != uri {
			return nil, fmt.Errorf("%w: %q is %s", ErrAdapterConflict, name, a.uri)
		}
		a.pinned = a.pinned || pinned
		if a.err != nil && a.weights == nil {
			r.fetchLocked(a) // the last fetch failed: try again
		}
		return a, nil
	}
	a := &adapter{name: name, uri: uri, pinned: pinned, slot: -1}
	r.byName[name] = a
	r.fetchLocked(a)
	return a, nil
}

// same reports whether a is registered at uri.
func (r *registry) same(a *adapter, uri string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return a.uri == uri
}

// pin sets whether a stays in host memory; unpinned, it is an LRU
// entry again (and may be evicted at once, past the cache's size).
func (r *registry) pin(a *adapter, pinned bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.pinned != pinned {
		a.pinned = pinned
		r.evictLocked()
	}
}

// wait blocks until a's fetch (if any) ends, and returns its error.
func (r *registry) wait(ctx context.Context, a *adapter) error {
	r.mu.Lock()
	ch := a.loading
	r.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return a.err
}

// remove unregisters name. Requests already running with it finish; its
// slot is freed when the last one does.
func (r *registry) remove(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.byName[name]
	if a == nil {
		return fmt.Errorf("%w: %q", ErrUnknownAdapter, name)
	}
	delete(r.byName, name)
	a.removed = true
	if a.slot < 0 {
		a.weights = nil
	}
	return nil
}

// lookup returns the adapter registered as name.
func (r *registry) lookup(name string) (*adapter, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.byName[name]
	return a, ok
}

// list describes every adapter, by name.
func (r *registry) list() []AdapterInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]AdapterInfo, 0, len(r.byName))
	for _, a := range r.byName {
		out = append(out, r.infoLocked(a))
	}
	slices.SortFunc(out, func(x, y AdapterInfo) int {
		if x.Name < y.Name {
			return -1
		}
		if x.Name > y.Name {
			return 1
		}
		return 0
	})
	return out
}

func (r *registry) info(a *adapter) AdapterInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.infoLocked(a)
}

func (r *registry) infoLocked(a *adapter) AdapterInfo {
	in := AdapterInfo{Name: a.name, URI: a.uri, Pinned: a.pinned}
	switch {
	case a.slot >= 0:
		in.Tier = TierActive
	case a.weights != nil:
		in.Tier = TierHost
	case a.loading != nil:
		in.Tier = TierLoading
	case a.err != nil:
		in.Tier, in.Error = TierFailed, a.err.Error()
	default:
		in.Tier = TierStore
	}
	if w := a.weights; w != nil {
		in.Rank, in.Bytes, in.Step = w.Cfg.Rank, w.Bytes(), w.Step
	}
	return in
}

// fetchLocked starts fetching a into the host tier unless it is there or
// on its way.
func (r *registry) fetchLocked(a *adapter) {
	if a.weights != nil || a.loading != nil {
		return
	}
	done := make(chan struct{})
	a.loading, a.err = done, nil
	r.fetches.Add(1)
	go func() {
		defer r.fetches.Done()
		w, err := r.load(r.ctx, a.uri)
		if err == nil {
			err = w.CheckBase(r.cfg, r.baseSHA)
		}
		if err != nil {
			err = fmt.Errorf("%w: adapter %q (%s): %w", ErrAdapterUnavailable, a.name, a.uri, err)
		}
		r.mu.Lock()
		if err == nil && !a.removed {
			a.weights = w
			r.clock++
			a.used = r.clock
			r.evictLocked()
		}
		a.err, a.loading = err, nil
		close(done)
		r.mu.Unlock()
		r.wake()
	}()
}

// evictLocked drops the least recently used unpinned adapters from host
// memory while more than hostCap are cached; one in a compute slot stays
// (its slot holds a copy, but the engine may need to reload it after a
// slot is reused, and the slot is the warmer tier anyway).
func (r *registry) evictLocked() {
	var cached []*adapter
	for _, a := range r.byName {
		if a.weights != nil && !a.pinned {
			cached = append(cached, a)
		}
	}
	if len(cached) <= r.hostCap {
		return
	}
	slices.SortFunc(cached, func(x, y *adapter) int { return int(x.used) - int(y.used) })
	for _, a := range cached[:len(cached)-r.hostCap] {
		if a.slot < 0 {
			a.weights = nil
		}
	}
}

// close waits for the fetches in flight (their context is done).
func (r *registry) close() { r.fetches.Wait() }
