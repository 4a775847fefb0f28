package collective

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
)

// FuzzTCPHello checks the TCP transport's only frame, the 24-byte hello a
// dialer sends (anyone who can reach the port can send one): a hello is
// accepted only from this session and from a lower rank (the one that
// dials), and then it is exactly what that rank's endpoint sends; every
// hello an endpoint sends parses back to its rank and channel.
func FuzzTCPHello(f *testing.F) {
	e := &tcpEndpoint{self: Self{Session: "0123456789abcdef"}}
	f.Add(e.hello(0, 0), "0123456789abcdef", uint8(1))
	f.Add(e.hello(3, 7), "0123456789abcdef", uint8(8))
	f.Add(e.hello(5, 1), "0123456789abcdef", uint8(2)) // a higher rank: never dials
	f.Add(e.hello(0, 0), "another-session!", uint8(1)) // another communicator
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "", uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, session string, rank uint8) {
		self := Self{Rank: int(rank), Session: session}
		e := &tcpEndpoint{self: self}
		var b [24]byte
		if len(data) < len(b) {
			return // handshake reads the whole hello or drops the conn
		}
		copy(b[:], data)
		peer, ch, ok := parseHello(b, self)
		if ok {
			if peer < 0 || peer >= self.Rank || ch < 0 {
				t.Fatalf("hello %x accepted from rank %d ch %d by rank %d", b, peer, ch, self.Rank)
			}
			if !bytes.Equal(e.hello(peer, ch), b[:]) {
				t.Fatalf("hello %x accepted as rank %d ch %d, which sends %x", b, peer, ch, e.hello(peer, ch))
			}
		}
		if self.Rank == 0 {
			return
		}
		r, c := int(binary.LittleEndian.Uint32(b[4:]))%self.Rank, int(binary.LittleEndian.Uint16(b[8:]))
		var sent [24]byte
		copy(sent[:], e.hello(r, c))
		if p, pc, ok := parseHello(sent, self); !ok || p != r || pc != c {
			t.Fatalf("rank %d's hello for rank %d ch %d parses as %d, %d, %v", r, self.Rank, c, p, pc, ok)
		}
		other := Self{Rank: self.Rank, Session: session + "x"}
		if _, _, ok := parseHello(sent, other); ok && sessionHash(other.Session) != sessionHash(session) {
			t.Fatalf("session %q accepted a hello of session %q", other.Session, session)
		}
	})
}

// FuzzCtrlFrames feeds a byte stream to a control connection's decoder, as
// the coordinator and every rank read them (JSON, one object per line):
// every frame decodes to a message that re-encodes stably, a hello is
// admitted only for a rank inside the world (and a refusal says why), and
// an abort's kind survives the relay (ranks report it, the coordinator
// passes it on, each rank turns it back into the same error).
func FuzzCtrlFrames(f *testing.F) {
	f.Add([]byte(`{"t":"hello","rank":1,"world":2,"host":"h/boot"}`+"\n"+`{"t":"addrs","addrs":{"tcp":"10.0.0.1:5000"}}`+"\n"), uint8(2))
	f.Add([]byte(`{"t":"hello","rank":2,"world":2}`+"\n"), uint8(2))
	f.Add([]byte(`{"t":"hello","rank":-1,"world":4}`), uint8(4))
	f.Add([]byte(`{"t":"addrs"}`), uint8(1))
	f.Add([]byte(`{"t":"hb","seq":18446744073709551615}{"t":"query","id":3,"seq":7}{"t":"bye"}`), uint8(3))
	f.Add([]byte(`{"t":"failed","rank":3,"kind":"timeout","op":"allreduce#7","reason":"no data for 30s"}`+"\n"+`{"t":"abort","rank":3,"kind":"bogus","reason":"x"}`), uint8(4))
	f.Add([]byte(`{"t":"table","session":"ab","peers":[{"host":"h","addrs":{"tcp":"a:1"}},null]}`), uint8(2))
	f.Add([]byte(`{"t":"hello","rank":1e99}`), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, world uint8) {
		w := 1 + int(world)%16
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			_, _ = b.Write(data)
			b.Close()
		}()
		cc := newCtrlConn(a)
		for range 1000 {
			var m ctrlMsg
			if err := cc.dec.Decode(&m); err != nil {
				return
			}
			if err := checkHello(&m, w); err != nil {
				if m.T == "hello" && m.World == w && m.Rank >= 0 && m.Rank < w {
					t.Fatalf("hello %+v refused in world %d: %v", m, w, err)
				}
				if !strings.Contains(err.Error(), "hello") && !strings.Contains(err.Error(), "world") {
					t.Fatalf("refusal of %+v does not say why: %v", m, err)
				}
			} else if m.T != "hello" || m.Rank < 0 || m.Rank >= w || m.World != w {
				t.Fatalf("hello %+v admitted in world %d", m, w)
			}
			enc, err := json.Marshal(&m)
			if err != nil {
				t.Fatalf("decoded %+v does not encode: %v", m, err)
			}
			var m2 ctrlMsg
			if err := json.Unmarshal(enc, &m2); err != nil {
				t.Fatalf("re-encoded %s does not decode: %v", enc, err)
			}
			if enc2, _ := json.Marshal(&m2); !bytes.Equal(enc, enc2) {
				t.Fatalf("encoding not stable: %s then %s", enc, enc2)
			}
			if m.T == "abort" || m.T == "failed" {
				pe := peerErr(m.Rank, m.Op, kindErr(m.Kind), errors.New(m.Reason))
				want := m.Kind
				switch want {
				case "stalled", "timeout", "aborted", "lost":
				default:
					want = "lost" // an unknown kind means the peer is lost
				}
				if got := errKind(pe.Err); got != want || pe.Rank != m.Rank || pe.Op != m.Op {
					t.Fatalf("abort %+v became %+v of kind %q, want %q", m, pe, got, want)
				}
			}
		}
	})
}
