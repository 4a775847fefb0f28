package rdma

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		in, hostport, dev string
	}{
		{"10.0.0.5:41234/mlx5_0", "10.0.0.5:41234", "mlx5_0"},
		{"[fe80::1]:1/rxe-eth0.1", "[fe80::1]:1", "rxe-eth0.1"},
		{formatAddr("127.0.0.1:65535", "fake0"), "127.0.0.1:65535", "fake0"},
	} {
		hp, dev, err := parseAddr(tc.in)
		if err != nil || hp != tc.hostport || dev != tc.dev {
			t.Errorf("parseAddr(%q) = %q, %q, %v", tc.in, hp, dev, err)
		}
	}
	for _, bad := range []string{"", "10.0.0.5:41234", "10.0.0.5:41234/", "10.0.0.5/mlx5_0", ":80/mlx5_0",
		"h:0/d", "h:65536/d", "h:x/d", "h:1/d d", "h:1/" + string(bytes.Repeat([]byte{'a'}, 65)), "a/b:1/d"} {
		if _, _, err := parseAddr(bad); !errors.Is(err, errHandshake) {
			t.Errorf("parseAddr(%q): %v, want errHandshake", bad, err)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.5:41234/mlx5_0", "[::1]:9/x", "/", "a:1/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, dev, err := parseAddr(s)
		if err != nil {
			return
		}
		if formatAddr(hp, dev) != s {
			t.Fatalf("%q parsed to %q + %q, which format back differently", s, hp, dev)
		}
		if _, _, err := net.SplitHostPort(hp); err != nil {
			t.Fatalf("%q: accepted host:port %q: %v", s, hp, err)
		}
	})
}

func sampleWire() *wireInfo {
	return &wireInfo{
		MTU: 5, LinkLayer: linkLayerEthernet, Rank: 3, Ch: 1, Session: 0xdeadbeef,
		QPN: 0x1234, PSN: 0xabcdef, LID: 0, Slots: 8, SlotBytes: 512 << 10, RKey: 99,
		RingAddr: 0x7f0000001000, CreditAddr: 0x7f0000801000,
		GID: [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 0, 14: 0, 15: 5},
	}
}

func TestWireRoundTrip(t *testing.T) {
	w := sampleWire()
	b := w.encode()
	if len(b) != wireSize {
		t.Fatalf("encoded %d bytes", len(b))
	}
	got, err := decodeWire(b)
	if err != nil || *got != *w {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

// TestWireNoQP: a side without a queue pair still hands over a valid
// handshake, flagged, with no queue pair fields.
func TestWireNoQP(t *testing.T) {
	w := sampleWire()
	w.Flags, w.QPN, w.PSN, w.RKey, w.RingAddr, w.CreditAddr = flagNoQP, 0, 0, 0, 0, 0
	got, err := decodeWire(w.encode())
	if err != nil || *got != *w {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func TestWireRejects(t *testing.T) {
	mut := map[string]func(w *wireInfo){
		"mtu 0":          func(w *wireInfo) { w.MTU = 0 },
		"mtu 6":          func(w *wireInfo) { w.MTU = 6 },
		"link layer":     func(w *wireInfo) { w.LinkLayer = 0 },
		"qpn 0":          func(w *wireInfo) { w.QPN = 0 },
		"qpn 25 bits":    func(w *wireInfo) { w.QPN = 1 << 24 },
		"psn 25 bits":    func(w *wireInfo) { w.PSN = 1 << 24 },
		"no slots":       func(w *wireInfo) { w.Slots = 0 },
		"many slots":     func(w *wireInfo) { w.Slots = maxSlots + 1 },
		"tiny slots":     func(w *wireInfo) { w.SlotBytes = 100 },
		"ring 0":         func(w *wireInfo) { w.RingAddr = 0 },
		"credit align":   func(w *wireInfo) { w.CreditAddr = 0x1001 },
		"ring overflows": func(w *wireInfo) { w.RingAddr = ^uint64(0) - 4096 },
		"rank":           func(w *wireInfo) { w.Rank = 1<<30 + 1 },
	}
	for name, m := range mut {
		w := sampleWire()
		m(w)
		if _, err := decodeWire(w.encode()); !errors.Is(err, errHandshake) {
			t.Errorf("%s: %v, want errHandshake", name, err)
		}
	}
	b := sampleWire().encode()
	for name, edit := range map[string]func([]byte) []byte{
		"short":   func(b []byte) []byte { return b[:wireSize-1] },
		"long":    func(b []byte) []byte { return append(b, 0) },
		"magic":   func(b []byte) []byte { b[0] ^= 1; return b },
		"version": func(b []byte) []byte { b[4] = 9; return b },
		"flags":   func(b []byte) []byte { b[34] = 2; return b },
		"no QP":   func(b []byte) []byte { b[34] = flagNoQP; return b }, // but a QP number
	} {
		if _, err := decodeWire(edit(bytes.Clone(b))); !errors.Is(err, errHandshake) {
			t.Errorf("%s: %v, want errHandshake", name, err)
		}
	}
}

// FuzzDecodeWire: the handshake decoder reads bytes from the network; it
// must never panic, and whatever it accepts must re-encode to the input.
func FuzzDecodeWire(f *testing.F) {
	f.Add(sampleWire().encode())
	f.Add(make([]byte, wireSize))
	f.Add([]byte("ARKR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWire(b)
		if err != nil {
			if !errors.Is(err, errHandshake) {
				t.Fatalf("error without errHandshake: %v", err)
			}
			return
		}
		if !bytes.Equal(w.encode(), b) {
			t.Fatalf("accepted %x, re-encodes as %x", b, w.encode())
		}
		if w.Slots == 0 || w.Slots > maxSlots || w.QPN >= 1<<24 || w.CreditAddr%8 != 0 || (w.QPN == 0) != (w.Flags&flagNoQP != 0) {
			t.Fatalf("accepted out-of-range fields: %+v", w)
		}
	})
}

func gid4(a, b, c, d byte) [16]byte { return [16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d} }

func TestChooseGID(t *testing.T) {
	linkLocal := [16]byte{0: 0xfe, 1: 0x80, 15: 1}
	table := []gidEntry{
		{0, linkLocal, "IB/RoCE v1"},
		{1, linkLocal, "RoCE v2"},
		{2, gid4(10, 0, 0, 5), "IB/RoCE v1"},
		{3, gid4(10, 0, 0, 5), "RoCE v2"},
		{4, gid4(192, 168, 1, 9), "IB/RoCE v1"},
		{5, gid4(192, 168, 1, 9), "RoCE v2"},
	}
	for _, tc := range []struct {
		name    string
		entries []gidEntry
		ips     []string
		want    int
	}{
		{"rank IP first", table, []string{"192.168.1.9", "10.0.0.5"}, 5},
		{"netdev IP", table, []string{"172.16.0.1", "10.0.0.5"}, 3},
		{"no IP matches: first v2 IPv4", table, []string{"172.16.0.1"}, 3},
		{"bad IP string", table, []string{"not-an-ip"}, 3},
		{"types unknown", []gidEntry{{0, linkLocal, ""}, {7, gid4(10, 1, 1, 1), ""}}, nil, 7},
	} {
		e, err := chooseGID(tc.entries, tc.ips)
		if err != nil || e.Index != tc.want {
			t.Errorf("%s: got %d %v, want %d", tc.name, e.Index, err, tc.want)
		}
	}
	if _, err := chooseGID([]gidEntry{{0, linkLocal, "RoCE v2"}, {1, gid4(10, 0, 0, 1), "IB/RoCE v1"}}, nil); !errors.Is(err, ErrNoDevice) {
		t.Errorf("only v1 IPv4 and v2 link-local: %v, want ErrNoDevice", err)
	}
}

func TestGIDType(t *testing.T) {
	old := sysfsRoot
	sysfsRoot = t.TempDir()
	defer func() { sysfsRoot = old }()
	dir := filepath.Join(sysfsRoot, "mlx5_0", "ports", "1", "gid_attrs", "types")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "3"), []byte("RoCE v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := gidType("mlx5_0", 1, 3); got != "RoCE v2" {
		t.Errorf("gidType = %q", got)
	}
	if got := gidType("mlx5_0", 1, 4); got != "" {
		t.Errorf("missing entry: %q", got)
	}
}
