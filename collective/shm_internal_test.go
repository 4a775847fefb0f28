//go:build linux

package collective

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

type recordSink struct {
	got  []byte
	segs []int
}

func (s *recordSink) sink(off int, seg []byte) {
	if off != len(s.got) {
		panic("segments out of order")
	}
	s.got = append(s.got, seg...)
	s.segs = append(s.segs, len(seg))
}

// TestShmRecvInPlaceAlignment drives the ring so that float32 elements
// straddle its wrap-around (the head is 2 bytes off a 4-byte boundary after
// a bfloat16 message) and checks every segment handed to the reducer is
// whole elements and the bytes arrive intact.
func TestShmRecvInPlaceAlignment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &ShmTransport{RingBytes: 4096}
	session := fmt.Sprintf("align%d", time.Now().UnixNano())
	var eps [2]Endpoint
	for r := range eps {
		ep, err := tr.Listen(ctx, Self{Rank: r, Session: session})
		if err != nil {
			t.Fatal(err)
		}
		eps[r] = ep
	}
	var conns [2]Conn
	var wg sync.WaitGroup
	for r := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := eps[r].Connect(ctx, 1-r, eps[1-r].Addr(), 0)
			if err != nil {
				t.Error(err)
				return
			}
			conns[r] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defer conns[0].Close()
	defer conns[1].Close()
	tx, rx := conns[0], conns[1].(*shmConn)
	for _, shift := range []int{2, 6, 4094, 1022, 3} { // each below the ring size
		if err := tx.Send(make([]byte, shift)); err != nil {
			t.Fatal(err)
		}
		if err := rx.Recv(make([]byte, shift)); err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 3*4096+4) // whole float32s, several wraps
		for i := range msg {
			msg[i] = byte(i*7 + shift)
		}
		errc := make(chan error, 1)
		go func() { errc <- tx.Send(msg) }()
		var s recordSink
		if err := rx.RecvInPlace(len(msg), 4, &s); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.got, msg) {
			t.Fatalf("shift %d: data corrupted", shift)
		}
		for _, n := range s.segs {
			if n%4 != 0 {
				t.Fatalf("shift %d: segment of %d bytes splits an element (%v)", shift, n, s.segs)
			}
		}
	}
}
