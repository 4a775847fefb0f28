package rdma

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestCanPost(t *testing.T) {
	for _, tc := range []struct {
		sent, freed, done uint64
		want              bool
	}{
		{0, 0, 0, true},
		{3, 0, 0, true},
		{4, 0, 4, false}, // receiver holds all 4 slots
		{4, 1, 0, false}, // freed remotely, but our write of chunk 0 has not completed: staging slot busy
		{4, 1, 1, true},
		{1<<64 - 1, 1<<64 - 4, 1<<64 - 4, true}, // counters wrap
		{2, 1<<64 - 2, 1<<64 - 2, false},        // 4 outstanding across the wrap
	} {
		if got := canPost(tc.sent, tc.freed, tc.done, 4); got != tc.want {
			t.Errorf("canPost(%d, %d, %d) = %v", tc.sent, tc.freed, tc.done, got)
		}
	}
	if slotOf(9, 4) != 1 || slotOf(1<<64-1, 8) != 7 {
		t.Error("slotOf")
	}
}

func TestRxRingRejects(t *testing.T) {
	r := newRxRing(2, 16)
	if err := r.arrive(0); !errors.Is(err, errProtocol) {
		t.Errorf("empty chunk: %v", err)
	}
	if err := r.arrive(17); !errors.Is(err, errProtocol) {
		t.Errorf("chunk larger than a slot: %v", err)
	}
	if r.arrive(16) != nil || r.arrive(1) != nil {
		t.Fatal("two chunks in two slots")
	}
	if err := r.arrive(1); !errors.Is(err, errProtocol) {
		t.Errorf("third chunk without a credit: %v", err)
	}
}

// TestRxRingModel plays a sender (filling slots the way Send does, only
// when a credit allows) against reads of random sizes, and checks the
// stream, the freed counts and pending.
func TestRxRingModel(t *testing.T) {
	const slots, sb = 3, 8
	rng := rand.New(rand.NewPCG(7, 7))
	r := newRxRing(slots, sb)
	ring := make([]byte, slots*sb)
	var want, got []byte
	var sent uint64
	var freedTotal int
	next := byte(0)
	for step := 0; step < 20000; step++ {
		if rng.IntN(2) == 0 && canPost(sent, uint64(freedTotal), sent, slots) {
			n := 1 + rng.IntN(sb)
			s := slotOf(sent, slots)
			for i := range n {
				ring[s*sb+i] = next
				want = append(want, next)
				next++
			}
			if err := r.arrive(uint32(n)); err != nil {
				t.Fatal(err)
			}
			sent++
		} else {
			dst := make([]byte, rng.IntN(2*sb))
			n, freed := r.read(dst, ring)
			got = append(got, dst[:n]...)
			freedTotal += freed
			if uint64(freedTotal) != r.consumed {
				t.Fatalf("freed %d, consumed %d", freedTotal, r.consumed)
			}
		}
		if r.pending() != len(want)-len(got) {
			t.Fatalf("pending %d, want %d", r.pending(), len(want)-len(got))
		}
	}
	if !bytes.Equal(got, want[:len(got)]) {
		t.Fatal("stream differs")
	}
}
