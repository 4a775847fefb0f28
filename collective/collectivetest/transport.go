package collectivetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
)

// RunTransport is the conformance suite every collective.Transport passes.
// newTransport returns a fresh, configured transport for one endpoint.
func RunTransport(t *testing.T, newTransport func(t *testing.T) collective.Transport) {
	t.Run("Exchange", func(t *testing.T) { testExchange(t, newTransport) })
	t.Run("Ordering", func(t *testing.T) { testOrdering(t, newTransport) })
	t.Run("Deadline", func(t *testing.T) { testDeadline(t, newTransport) })
	t.Run("Interrupt", func(t *testing.T) { testInterrupt(t, newTransport) })
	t.Run("PeerClose", func(t *testing.T) { testPeerClose(t, newTransport) })
	t.Run("Mesh", func(t *testing.T) { testMesh(t, newTransport) })
}

// mesh connects n endpoints pairwise on the given channels; conns[a][b][ch].
func mesh(t *testing.T, newTransport func(t *testing.T) collective.Transport, n, channels int) [][][]collective.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	session := fmt.Sprintf("ct%d", time.Now().UnixNano())
	eps := make([]collective.Endpoint, n)
	for r := range n {
		ep, err := newTransport(t).Listen(ctx, collective.Self{Rank: r, Session: session, IP: "127.0.0.1"})
		if err != nil {
			t.Fatalf("listen rank %d: %v", r, err)
		}
		eps[r] = ep
		t.Cleanup(func() { ep.Close() })
	}
	conns := make([][][]collective.Conn, n)
	for a := range n {
		conns[a] = make([][]collective.Conn, n)
		for b := range n {
			conns[a][b] = make([]collective.Conn, channels)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for a := range n {
		for b := range n {
			for ch := range channels {
				if a == b {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := eps[a].Connect(ctx, b, eps[b].Addr(), ch)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, fmt.Errorf("connect %d->%d ch %d: %w", a, b, ch, err))
						return
					}
					conns[a][b][ch] = c
				}()
			}
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for a := range conns {
			for b := range conns[a] {
				for _, c := range conns[a][b] {
					if c != nil {
						c.Close()
					}
				}
			}
		}
	})
	return conns
}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func testExchange(t *testing.T, nt func(t *testing.T) collective.Transport) {
	conns := mesh(t, nt, 2, 2)
	for _, size := range []int{0, 1, 3, 4096, 100_003, 3<<20 + 5} {
		for ch := range 2 {
			a, b := conns[0][1][ch], conns[1][0][ch]
			pa, pb := pattern(size, 1), pattern(size, 2)
			ga, gb := make([]byte, size), make([]byte, size)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			wg.Add(4)
			go func() { defer wg.Done(); errs[0] = a.Send(pa) }()
			go func() { defer wg.Done(); errs[1] = b.Send(pb) }()
			go func() { defer wg.Done(); errs[2] = a.Recv(ga) }()
			go func() { defer wg.Done(); errs[3] = b.Recv(gb) }()
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("size %d ch %d: %v", size, ch, err)
			}
			if !bytes.Equal(ga, pb) || !bytes.Equal(gb, pa) {
				t.Fatalf("size %d ch %d: data mismatch", size, ch)
			}
		}
	}
}

func testOrdering(t *testing.T, nt func(t *testing.T) collective.Transport) {
	conns := mesh(t, nt, 2, 1)
	a, b := conns[0][1][0], conns[1][0][0]
	const msgs = 500
	done := make(chan error, 1)
	go func() {
		for i := range msgs {
			if err := a.Send(pattern(1+i%37, i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range msgs {
		want := pattern(1+i%37, i)
		got := make([]byte, len(want))
		if err := b.Recv(got); err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d out of order or corrupt", i)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func testDeadline(t *testing.T, nt func(t *testing.T) collective.Transport) {
	conns := mesh(t, nt, 2, 1)
	b := conns[1][0][0]
	b.SetDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	err := b.Recv(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Recv past deadline: got %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline of 50ms took %v", d)
	}
	// A sender blocked on a full buffer times out too.
	a := conns[0][1][0]
	a.SetDeadline(time.Now().Add(100 * time.Millisecond))
	big := make([]byte, 64<<20)
	if err := a.Send(big); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send into a peer that never reads: got %v, want os.ErrDeadlineExceeded", err)
	}
}

func testInterrupt(t *testing.T, nt func(t *testing.T) collective.Transport) {
	conns := mesh(t, nt, 2, 1)
	b := conns[1][0][0]
	errc := make(chan error, 1)
	go func() { errc <- b.Recv(make([]byte, 8)) }()
	time.Sleep(30 * time.Millisecond)
	b.SetDeadline(time.Unix(1, 0))
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupted Recv: got %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a past deadline did not interrupt a blocked Recv")
	}
}

func testPeerClose(t *testing.T, nt func(t *testing.T) collective.Transport) {
	conns := mesh(t, nt, 2, 1)
	a, b := conns[0][1][0], conns[1][0][0]
	errc := make(chan error, 1)
	go func() { errc <- b.Recv(make([]byte, 8)) }()
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Recv from a closed peer succeeded")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Recv from a closed peer hung")
	}
	if err := a.Send([]byte{1}); err == nil {
		t.Fatal("Send on a closed conn succeeded")
	}
}

func testMesh(t *testing.T, nt func(t *testing.T) collective.Transport) {
	const n = 4
	conns := mesh(t, nt, n, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n*n*2)
	for a := range n {
		for b := range n {
			for ch := range 2 {
				if a == b {
					continue
				}
				wg.Add(2)
				go func() {
					defer wg.Done()
					errs <- conns[a][b][ch].Send(pattern(1000+a*10+b, a*100+b*10+ch))
				}()
				go func() {
					defer wg.Done()
					want := pattern(1000+b*10+a, b*100+a*10+ch)
					got := make([]byte, len(want))
					if err := conns[a][b][ch].Recv(got); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, want) {
						errs <- fmt.Errorf("%d<-%d ch %d: mismatch", a, b, ch)
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
