package netlimit

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A client at its cap gets its next connection closed at once; closing one
// (even twice) frees exactly one slot.
func TestPerClient(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := PerClient(raw, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
	dial()
	dial()
	first, second := <-accepted, <-accepted
	if third := dial(); !closedByServer(third) {
		t.Fatal("a third connection from the same address was kept")
	}
	first.Close()
	first.Close() // a second close frees nothing more
	dial()
	<-accepted
	if fifth := dial(); !closedByServer(fifth) {
		t.Fatal("past the cap after a close")
	}
	second.Close()
	if PerClient(raw, 0) != raw {
		t.Error("max 0 should leave the listener as it is")
	}
}
