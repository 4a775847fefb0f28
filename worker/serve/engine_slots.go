package serve

import "fmt"

// useAdapters lets the engine serve reg's adapters through the decoder's
// compute slots (train.Decoder.SetAdapterSlots, done by the caller).
func (e *Engine) useAdapters(reg *registry) {
	e.reg = reg
	n := e.dec.AdapterSlots()
	e.slots, e.slotUsed = make([]*adapter, n), make([]uint64, n)
}

// acquire makes p's adapter active in a compute slot and takes a
// reference on the slot for p (on the scheduler goroutine, with e.mu
// held). It reports false, with no error, when p must wait: the adapter
// is being fetched (a fetch is started if it was evicted from host
// memory) or every slot is in use by running requests.
func (e *Engine) acquire(p *pending) (bool, error) {
	a := p.ad
	if a == nil {
		return true, nil
	}
	r := e.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case a.removed && a.slot < 0:
		return false, fmt.Errorf("%w: %q was removed", ErrUnknownAdapter, a.name)
	case a.slot >= 0:
	case a.weights == nil && a.loading == nil && a.err != nil:
		return false, a.err
	case a.weights == nil:
		r.fetchLocked(a)
		return false, nil
	default:
		s := e.freeSlot()
		if s < 0 {
			return false, nil
		}
		if old := e.slots[s]; old != nil {
			old.slot = -1
			if old.removed {
				old.weights = nil
			}
		}
		if err := e.dec.LoadSlot(s, a.weights); err != nil {
			e.slots[s] = nil
			return false, fmt.Errorf("adapter %q: %w", a.name, err)
		}
		e.slots[s], a.slot = a, s
	}
	e.clock++
	e.slotUsed[a.slot] = e.clock
	r.clock++
	a.used = r.clock
	a.refs++
	p.slotted = true
	return true, nil
}

// freeSlot is an empty slot, else the least recently used one that no
// running request holds, else -1.
func (e *Engine) freeSlot() int {
	best := -1
	for s, a := range e.slots {
		if a == nil {
			return s
		}
		if a.refs == 0 && (best < 0 || e.slotUsed[s] < e.slotUsed[best]) {
			best = s
		}
	}
	return best
}

// release drops p's reference on its adapter's slot; the slot of a removed
// adapter is emptied when its last request ends.
func (e *Engine) release(p *pending) {
	a, r := p.ad, e.reg
	p.slotted = false
	r.mu.Lock()
	defer r.mu.Unlock()
	a.refs--
	if a.refs == 0 && a.removed && a.slot >= 0 {
		_ = e.dec.ClearSlot(a.slot)
		e.slots[a.slot], a.slot, a.weights = nil, -1, nil
	}
}
