package rdma

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// errHandshake is wrapped by every malformed or mismatched connection
// handshake and address.
var errHandshake = errors.New("rdma: bad handshake")

func errorf(format string, args ...any) error { return fmt.Errorf("rdma: "+format, args...) }

// errnoOr names a failed verbs call's error: the errno cgo captured when
// set, else the return code (ibv_post_* return an errno value directly).
func errnoOr(errno error, rc int) error {
	if errno != nil {
		return errno
	}
	if rc > 0 {
		return syscall.Errno(rc)
	}
	return fmt.Errorf("return code %d", rc)
}

// formatAddr is an endpoint's Addr: the TCP side channel's host:port, a
// slash, and the device name (for messages; peers learn the rest in the
// handshake), e.g. "10.0.0.5:41234/mlx5_0".
func formatAddr(hostport, dev string) string { return hostport + "/" + dev }

// parseAddr splits an Addr from formatAddr and checks both halves.
func parseAddr(s string) (hostport, dev string, err error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", "", fmt.Errorf("address %q: want host:port/device: %w", s, errHandshake)
	}
	hostport, dev = s[:i], s[i+1:]
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", "", fmt.Errorf("address %q: %w: %w", s, errHandshake, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", "", fmt.Errorf("address %q: port %q: %w", s, port, errHandshake)
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return "", "", fmt.Errorf("address %q: host %q: %w", s, host, errHandshake)
	}
	if dev == "" || len(dev) > 64 {
		return "", "", fmt.Errorf("address %q: device name %q: %w", s, dev, errHandshake)
	}
	for _, r := range dev {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return "", "", fmt.Errorf("address %q: device name %q: %w", s, dev, errHandshake)
		}
	}
	return hostport, dev, nil
}

// Geometry limits, checked on both sides of the handshake.
const (
	maxSlots     = 64
	minSlotBytes = 4 << 10
	maxSlotBytes = 64 << 20
)

// wireInfo is what each side of a connection sends the other over the TCP
// side channel: who it is, how to reach its queue pair, and where the peer
// may write (its receive ring and the word that carries credits back).
//
// Encoding (wireSize bytes, little-endian):
//
//	0  magic "ARKR" (u32)   4 version (u16)   6 path MTU enum (u8)   7 link layer (u8)
//	8  rank (u32)          12 channel (u32)  16 session hash (u64)
//	24 QP number (u32)     28 first PSN (u32) 32 LID (u16)   34 flags (u16)
//	36 slots (u32)         40 slot bytes (u32) 44 rkey (u32)
//	48 ring address (u64)  56 credit word address (u64)     64 GID (16 bytes)
//
// Flags: bit 0 (flagNoQP) says the sender could not create or prepare its
// queue pair; QP number, PSN, rkey and addresses are then zero, and the
// connection goes on only to exchange the verdict (see Connect).
type wireInfo struct {
	Flags          uint16
	MTU, LinkLayer uint8
	Rank, Ch       uint32
	Session        uint64
	QPN, PSN       uint32
	LID            uint16
	Slots          uint32
	SlotBytes      uint32
	RKey           uint32
	RingAddr       uint64
	CreditAddr     uint64
	GID            [16]byte
}

const (
	wireMagic   = 0x524b5241 // "ARKR" as little-endian bytes
	wireVersion = 2          // 2: flags, and the probe and verdict after the ready bytes
	wireSize    = 80

	flagNoQP = 1 << 0
)

func (w *wireInfo) encode() []byte {
	b := make([]byte, wireSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], wireMagic)
	le.PutUint16(b[4:], wireVersion)
	b[6], b[7] = w.MTU, w.LinkLayer
	le.PutUint32(b[8:], w.Rank)
	le.PutUint32(b[12:], w.Ch)
	le.PutUint64(b[16:], w.Session)
	le.PutUint32(b[24:], w.QPN)
	le.PutUint32(b[28:], w.PSN)
	le.PutUint16(b[32:], w.LID)
	le.PutUint16(b[34:], w.Flags)
	le.PutUint32(b[36:], w.Slots)
	le.PutUint32(b[40:], w.SlotBytes)
	le.PutUint32(b[44:], w.RKey)
	le.PutUint64(b[48:], w.RingAddr)
	le.PutUint64(b[56:], w.CreditAddr)
	copy(b[64:], w.GID[:])
	return b
}

// decodeWire parses and validates a peer's handshake. It is fed bytes from
// the network, so every field is range-checked.
func decodeWire(b []byte) (*wireInfo, error) {
	if len(b) != wireSize {
		return nil, fmt.Errorf("handshake of %d bytes, want %d: %w", len(b), wireSize, errHandshake)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != wireMagic {
		return nil, fmt.Errorf("handshake magic %#x: %w", m, errHandshake)
	}
	if v := le.Uint16(b[4:]); v != wireVersion {
		return nil, fmt.Errorf("handshake version %d, want %d: %w", v, wireVersion, errHandshake)
	}
	w := &wireInfo{
		MTU: b[6], LinkLayer: b[7],
		Rank: le.Uint32(b[8:]), Ch: le.Uint32(b[12:]), Session: le.Uint64(b[16:]),
		QPN: le.Uint32(b[24:]), PSN: le.Uint32(b[28:]), LID: le.Uint16(b[32:]), Flags: le.Uint16(b[34:]),
		Slots: le.Uint32(b[36:]), SlotBytes: le.Uint32(b[40:]), RKey: le.Uint32(b[44:]),
		RingAddr: le.Uint64(b[48:]), CreditAddr: le.Uint64(b[56:]),
	}
	copy(w.GID[:], b[64:])
	switch {
	case w.MTU < 1 || w.MTU > 5:
		return nil, fmt.Errorf("handshake MTU enum %d: %w", w.MTU, errHandshake)
	case w.LinkLayer != linkLayerIB && w.LinkLayer != linkLayerEthernet:
		return nil, fmt.Errorf("handshake link layer %d: %w", w.LinkLayer, errHandshake)
	case w.Rank > 1<<30 || w.Ch > 1<<16:
		return nil, fmt.Errorf("handshake rank %d channel %d: %w", w.Rank, w.Ch, errHandshake)
	case w.Flags&^flagNoQP != 0:
		return nil, fmt.Errorf("handshake flags %#x: %w", w.Flags, errHandshake)
	case w.Slots < 1 || w.Slots > maxSlots || w.SlotBytes < minSlotBytes || w.SlotBytes > maxSlotBytes:
		return nil, fmt.Errorf("handshake ring of %d x %d bytes: %w", w.Slots, w.SlotBytes, errHandshake)
	case w.Flags&flagNoQP != 0:
		if w.QPN != 0 || w.PSN != 0 || w.RKey != 0 || w.RingAddr != 0 || w.CreditAddr != 0 {
			return nil, fmt.Errorf("handshake without a queue pair carries one: %w", errHandshake)
		}
	case w.QPN == 0 || w.QPN >= 1<<24 || w.PSN >= 1<<24:
		return nil, fmt.Errorf("handshake QP number %d PSN %d (24 bits, QP 0 reserved): %w", w.QPN, w.PSN, errHandshake)
	case w.RingAddr == 0 || w.CreditAddr == 0 || w.CreditAddr%8 != 0:
		return nil, fmt.Errorf("handshake ring %#x credit word %#x: %w", w.RingAddr, w.CreditAddr, errHandshake)
	case w.RingAddr > ^uint64(0)-uint64(w.Slots)*uint64(w.SlotBytes):
		return nil, fmt.Errorf("handshake ring %#x overflows: %w", w.RingAddr, errHandshake)
	}
	return w, nil
}

// portInfo describes the local port a queue pair uses.
type portInfo struct {
	Port      int
	LID       uint16
	GID       [16]byte
	GIDIndex  int
	MTU       uint8 // active path MTU enum (1 = 256 ... 5 = 4096)
	LinkLayer uint8
	PSN       uint32 // per queue pair; set by Connect
}

// gidEntry is one entry of a port's GID table.
type gidEntry struct {
	Index int
	GID   [16]byte
	Type  string // sysfs gid_attrs/types: "RoCE v2", "IB/RoCE v1", "" if unknown
}

var v4Prefix = [12]byte{10: 0xff, 11: 0xff}

// ipv4Of returns the IPv4 address of an IPv4-mapped GID (::ffff:a.b.c.d).
func ipv4Of(g [16]byte) (net.IP, bool) {
	if !bytes.Equal(g[:12], v4Prefix[:]) {
		return nil, false
	}
	return net.IPv4(g[12], g[13], g[14], g[15]), true
}

// chooseGID picks the RoCE source GID: the RoCE v2 entry mapped from the
// first of ips that has one, else any RoCE v2 IPv4-mapped entry, else any
// IPv4-mapped entry (types unknown). RoCE v2 over IPv4 is what routes
// across subnets and what switches' ECN/PFC configurations expect.
func chooseGID(entries []gidEntry, ips []string) (gidEntry, error) {
	isV2 := func(e gidEntry) bool { return strings.EqualFold(strings.TrimSpace(e.Type), "RoCE v2") }
	for _, want := range ips {
		wip := net.ParseIP(want)
		for _, e := range entries {
			if ip, ok := ipv4Of(e.GID); ok && isV2(e) && wip != nil && ip.Equal(wip) {
				return e, nil
			}
		}
	}
	for _, pass := range []func(gidEntry) bool{isV2, func(e gidEntry) bool { return e.Type == "" }} {
		for _, e := range entries {
			if ip, ok := ipv4Of(e.GID); ok && !ip.IsUnspecified() && pass(e) {
				return e, nil
			}
		}
	}
	return gidEntry{}, fmt.Errorf("no RoCE v2 IPv4-mapped GID among %d entries (set Transport.GIDIndex or ARK_COLL_RDMA_GID_INDEX): %w", len(entries), ErrNoDevice)
}

// sysfsRoot is where gidType reads GID types; tests point it elsewhere.
var sysfsRoot = "/sys/class/infiniband"

// gidType reads the type of one GID table entry from sysfs.
func gidType(dev string, port, index int) string {
	b, err := os.ReadFile(filepath.Join(sysfsRoot, dev, "ports", strconv.Itoa(port), "gid_attrs", "types", strconv.Itoa(index)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
