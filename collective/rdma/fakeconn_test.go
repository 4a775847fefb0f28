package rdma

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/collective/collectivetest"
)

func fakeTransport() *Transport {
	return &Transport{opener: fakeOpener{}, Slots: 4, SlotBytes: 64 << 10}
}

// TestFakeConformance runs the shared transport suite over the data path
// on the in-memory NIC: everything but the verbs calls themselves.
func TestFakeConformance(t *testing.T) {
	collectivetest.RunTransport(t, func(*testing.T) collective.Transport { return fakeTransport() })
}

func TestFakeCollectives(t *testing.T) {
	o := collective.Options{Transport: fakeTransport(), ChunkBytes: 1000, Channels: 2, SmallMax: 1024}
	cases := collectivetest.DefaultCases()
	if testing.Short() {
		cases = cases[:4]
	}
	collectivetest.RunCollectives(t, o, cases)
}

// pair connects two endpoints of tr on channel 0.
func pair(t *testing.T, tr func() *Transport) (a, b collective.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eps := make([]collective.Endpoint, 2)
	for r := range eps {
		ep, err := tr().Listen(ctx, collective.Self{Rank: r, Session: "s", IP: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		eps[r] = ep
		t.Cleanup(func() { ep.Close() })
	}
	conns := make([]collective.Conn, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[r], errs[r] = eps[r].Connect(ctx, 1-r, eps[1-r].Addr(), 0)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conns[0].Close(); conns[1].Close() })
	return conns[0], conns[1]
}

// TestFakeByteStream: the conn is a byte stream, so sends and receives of
// unrelated sizes (smaller than, equal to and spanning slots) must agree.
func TestFakeByteStream(t *testing.T) {
	a, b := pair(t, func() *Transport { return &Transport{opener: fakeOpener{}, Slots: 2, SlotBytes: 4096} })
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := func() []int {
		var s []int
		for total := 0; total < 200_000; {
			n := rng.IntN(10_000)
			s = append(s, n)
			total += n
		}
		return s
	}
	sends := sizes()
	var want []byte
	for i, n := range sends {
		want = append(want, bytes.Repeat([]byte{byte(i)}, n)...)
	}
	errc := make(chan error, 1)
	go func() {
		off := 0
		for _, n := range sends {
			if err := a.Send(want[off : off+n]); err != nil {
				errc <- err
				return
			}
			off += n
		}
		errc <- nil
	}()
	got := make([]byte, 0, len(want))
	for len(got) < len(want) {
		n := min(rng.IntN(9000), len(want)-len(got))
		buf := make([]byte, n)
		if err := b.Recv(buf); err != nil {
			t.Fatalf("recv after %d bytes: %v", len(got), err)
		}
		got = append(got, buf...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("byte stream corrupted")
	}
}

// TestFakeSendThenClose: bytes sent right before Close still arrive, then
// the receiver sees EOF.
func TestFakeSendThenClose(t *testing.T) {
	a, b := pair(t, func() *Transport { return &Transport{opener: fakeOpener{}, Slots: 2, SlotBytes: 4096} })
	msg := bytes.Repeat([]byte("x"), 6000)
	if err := a.Send(msg); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if err := b.Recv(got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("recv after peer close: %v", err)
	}
	b.SetDeadline(time.Now().Add(3 * time.Second))
	if err := b.Recv(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("recv past the end: %v, want EOF", err)
	}
	if err := b.Send([]byte{1}); err == nil {
		// The first send may still be posted (a credit was free); the
		// failure then shows on a later call.
		b.SetDeadline(time.Now().Add(time.Second))
		if err := b.Send(make([]byte, 64<<10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("send to a closed peer: %v", err)
		}
	}
}

// TestFakeReleases: every queue pair is destroyed and the device closed
// once the endpoints and conns are closed, in either order.
func TestFakeReleases(t *testing.T) {
	dev := &fakeDevice{}
	t.Run("pair", func(t *testing.T) {
		a, b := pair(t, func() *Transport { return &Transport{opener: fakeOpener{dev}, Slots: 2, SlotBytes: 4096} })
		if err := a.Send([]byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if err := b.Recv(make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
	})
	if n := dev.live.Load(); n != 0 {
		t.Errorf("%d queue pairs left", n)
	}
	// Two endpoints on the shared fake device: each releases its hold.
	if n := dev.closes.Load(); n != 2 {
		t.Errorf("device closed %d times, want 2 (once per endpoint's last holder)", n)
	}
}

// TestFakeHandshakeMismatch: ranks configured with different rings refuse
// to connect, with errHandshake.
func TestFakeHandshakeMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var eps [2]collective.Endpoint
	for r := range eps {
		tr := &Transport{opener: fakeOpener{}, Slots: 2 + r, SlotBytes: 4096}
		ep, err := tr.Listen(ctx, collective.Self{Rank: r, Session: "m", IP: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		eps[r] = ep
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := eps[r].Connect(ctx, 1-r, eps[1-r].Addr(), 0)
			if c != nil {
				c.Close()
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err == nil {
			t.Fatalf("rank %d connected across mismatched rings", r)
		}
	}
	if !errors.Is(errs[0], errHandshake) && !errors.Is(errs[1], errHandshake) {
		t.Fatalf("want errHandshake, got %v / %v", errs[0], errs[1])
	}
}

func TestTransportOptions(t *testing.T) {
	for _, tr := range []Transport{{Slots: 65}, {SlotBytes: 100}, {SlotBytes: 4097}, {Port: 300}, {AckTimeout: 40}, {TrafficClass: -1}} {
		if _, err := tr.withDefaults(); !errors.Is(err, collective.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", tr, err)
		}
	}
	c, err := (&Transport{}).withDefaults()
	if err != nil || c.Slots != DefaultSlots || c.SlotBytes != DefaultSlotBytes || c.Port != 1 || c.AckTimeout != DefaultAckTimeout {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}
