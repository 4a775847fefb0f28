package rdma

import "fmt"

// Flow control, pure Go (no verbs), so it is unit-tested here.
//
// Each direction of a connection has a ring of `slots` slots of `slotBytes`
// in the receiver's registered memory. The sender writes chunk k (at most
// slotBytes of one Send) into slot k % slots with RDMA WRITE_WITH_IMM, the
// immediate carrying the chunk's length. It stages the chunk in its own
// slot k % slots first (the user's buffer is not registered). The receiver
// counts the slots it has fully consumed ("freed") and RDMA-WRITEs that
// count into an 8-byte credit word of the sender's. The sender may post
// chunk k once the receiver freed chunk k-slots (k - freed < slots) and its
// own write of chunk k-slots completed (staging slot free again).

// slotOf is the ring slot of chunk k.
func slotOf(k uint64, slots int) int { return int(k % uint64(slots)) }

// canPost reports whether chunk number sent may be posted, given how many
// chunks the receiver freed and how many of our writes completed.
func canPost(sent, freed, done uint64, slots int) bool {
	return sent-freed < uint64(slots) && sent-done < uint64(slots)
}

// rxRing tracks the receive side: which slots hold data and how far the
// reader got into the oldest one.
type rxRing struct {
	slots, slotBytes int
	lens             []uint32 // length of the chunk in each slot
	arrived          uint64   // chunks whose completion was polled
	consumed         uint64   // chunks fully read (slots freed)
	off              int      // bytes read from slot consumed%slots
}

func newRxRing(slots, slotBytes int) *rxRing {
	return &rxRing{slots: slots, slotBytes: slotBytes, lens: make([]uint32, slots)}
}

// arrive records the completion of the next chunk, n bytes long.
func (r *rxRing) arrive(n uint32) error {
	if n == 0 || int64(n) > int64(r.slotBytes) {
		return fmt.Errorf("chunk of %d bytes in %d-byte slots: %w", n, r.slotBytes, errProtocol)
	}
	if r.arrived-r.consumed >= uint64(r.slots) {
		return fmt.Errorf("chunk %d arrived with all %d slots full: %w", r.arrived, r.slots, errProtocol)
	}
	r.lens[slotOf(r.arrived, r.slots)] = n
	r.arrived++
	return nil
}

// pending is the number of bytes arrived and not yet read.
func (r *rxRing) pending() int {
	n := 0
	for k := r.consumed; k < r.arrived; k++ {
		n += int(r.lens[slotOf(k, r.slots)])
	}
	return n - r.off
}

// read copies arrived bytes from ring (slots*slotBytes long) into dst and
// returns the bytes copied and the slots it freed.
func (r *rxRing) read(dst []byte, ring []byte) (n, freed int) {
	for len(dst) > 0 && r.consumed < r.arrived {
		s := slotOf(r.consumed, r.slots)
		l := int(r.lens[s])
		c := copy(dst, ring[s*r.slotBytes+r.off:s*r.slotBytes+l])
		dst = dst[c:]
		n += c
		r.off += c
		if r.off == l {
			r.consumed++
			r.off = 0
			freed++
		}
	}
	return n, freed
}
