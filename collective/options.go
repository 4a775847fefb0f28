package collective

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Algorithm names accepted by Options.Algo and ARK_COLL_ALGO.
const (
	AlgoAuto = "auto"
	AlgoRing = "ring" // chunked, pipelined ring over Channels connections
	AlgoRD   = "rd"   // recursive doubling: log2(n) exchanges, latency-optimal
)

// Defaults.
const (
	DefaultChannels       = 2
	DefaultChunkBytes     = 256 << 10
	DefaultTimeout        = 60 * time.Second
	DefaultConnectTimeout = 60 * time.Second
	DefaultHeartbeat      = 200 * time.Millisecond
	DefaultPeerTimeout    = 5 * time.Second
)

// Options configures New. Zero fields take defaults; NewFromEnv and
// Options.FromEnv fill them from the environment Ark sets for a task.
type Options struct {
	Rank      int
	WorldSize int
	// MasterAddr is host:port of rank 0's rendezvous (MASTER_ADDR:MASTER_PORT).
	MasterAddr string
	// Listener, if set on rank 0, serves the rendezvous instead of listening
	// on MasterAddr (tests pass a 127.0.0.1:0 listener to avoid port races).
	// New takes ownership of it.
	Listener net.Listener

	// TransportName is "auto", "tcp", "shm", or a name registered with
	// RegisterTransport ("rdma" once collective/rdma is imported)
	// (ARK_COLL_TRANSPORT). Ignored if Transport is set. "auto" uses shm
	// between ranks on the same host and, between hosts, rdma where both
	// ranks could open it (RDMA below), else tcp; an rdma connection whose
	// connect-time check fails on either side is made over tcp instead
	// (Communicator.Fallbacks). "tcp" forces TCP everywhere.
	TransportName string
	// Transport, if set, is used for every peer (for example rdma.Transport).
	Transport Transport
	// TCP and Shm configure the built-in transports. FromEnv binds TCP to
	// the interface named by ARK_COLL_SOCKET_IFNAME, or NCCL_SOCKET_IFNAME
	// (which the agent sets to the RDMA NIC's netdev) when one matches.
	TCP TCPTransport
	Shm ShmTransport
	// RDMA is the transport auto uses between hosts. Nil opens the one
	// registered as "rdma" (collective/rdma, configured by ARK_COLL_RDMA_*)
	// when a binary imports it; where it cannot open or listen (no
	// libibverbs, no active device) auto uses tcp between hosts, silently.
	RDMA Transport

	Algo       string // auto, ring, rd (ARK_COLL_ALGO)
	ChunkBytes int    // ring pipeline chunk (ARK_COLL_CHUNK, e.g. "512K")
	Channels   int    // parallel ring channels (ARK_COLL_CHANNELS)
	// SmallMax is, for auto, the largest message (bytes) sent with recursive
	// doubling (ARK_COLL_SMALL_MAX); 0 picks it by world size (SmallMaxFor),
	// or by the tuning pass with Tune.
	SmallMax int
	// Tune runs a tuning pass when the communicator starts (about 30 ms on
	// loopback): both algorithms are timed on a few sizes and the measured
	// crossover replaces SmallMax. It is skipped when SmallMax or Algo is
	// set. NewFromEnv turns it on unless ARK_COLL_TUNE=0.
	Tune bool

	// Timeout is the deadline of every operation unless its context has an
	// earlier one (ARK_COLL_TIMEOUT, e.g. "30s").
	Timeout time.Duration
	// ConnectTimeout bounds New: rendezvous and connection setup.
	ConnectTimeout time.Duration
	// Heartbeat is the control-plane heartbeat interval; PeerTimeout is how
	// long a silent rank (or rank 0) is tolerated before everyone aborts.
	Heartbeat   time.Duration
	PeerTimeout time.Duration

	// Host is this rank's host identity: ranks with equal ones use shm under
	// auto, others a network transport. Empty (the normal case) takes the
	// hostname and boot id; tests set it to put in-process ranks on
	// different "hosts".
	Host string
}

// FromEnv returns o with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and the
// ARK_COLL_* overrides applied. Malformed values are errors.
func (o Options) FromEnv() (Options, error) {
	var err error
	geti := func(k string, dst *int) {
		if v, ok := os.LookupEnv(k); ok && err == nil {
			n, e := parseBytes(v)
			if e != nil {
				err = fmt.Errorf("%s=%q: %w", k, v, e)
				return
			}
			*dst = n
		}
	}
	getd := func(k string, dst *time.Duration) {
		if v, ok := os.LookupEnv(k); ok && err == nil {
			d, e := time.ParseDuration(v)
			if e != nil {
				err = fmt.Errorf("%s=%q: %w", k, v, e)
				return
			}
			*dst = d
		}
	}
	geti("RANK", &o.Rank)
	geti("WORLD_SIZE", &o.WorldSize)
	if a, p := os.Getenv("MASTER_ADDR"), os.Getenv("MASTER_PORT"); a != "" || p != "" {
		if a == "" {
			a = "127.0.0.1"
		}
		o.MasterAddr = net.JoinHostPort(a, p)
	}
	if v := os.Getenv("ARK_COLL_TRANSPORT"); v != "" {
		o.TransportName = v
	}
	if v := os.Getenv("ARK_COLL_ALGO"); v != "" {
		o.Algo = v
	}
	if v := os.Getenv("ARK_COLL_SOCKET_IFNAME"); v != "" && err == nil {
		ip, e := ifaceIP(v)
		if e != nil {
			err = fmt.Errorf("ARK_COLL_SOCKET_IFNAME=%q: %w", v, e)
		}
		o.TCP.Bind = ip
	} else if v := os.Getenv("NCCL_SOCKET_IFNAME"); v != "" && o.TCP.Bind == "" {
		// Set by the agent from the node's RDMA inventory: keep TCP on the
		// RDMA NIC's netdev (RoCE). Lenient: no match keeps the default.
		if ip, e := ifaceIP(v); e == nil {
			o.TCP.Bind = ip
		}
	}
	geti("ARK_COLL_CHUNK", &o.ChunkBytes)
	geti("ARK_COLL_CHANNELS", &o.Channels)
	geti("ARK_COLL_SMALL_MAX", &o.SmallMax)
	o.Tune = os.Getenv("ARK_COLL_TUNE") != "0"
	getd("ARK_COLL_TIMEOUT", &o.Timeout)
	getd("ARK_COLL_PEER_TIMEOUT", &o.PeerTimeout)
	return o, err
}

func (o Options) withDefaults() (Options, error) {
	if o.TransportName == "" {
		o.TransportName = "auto"
	}
	if o.Algo == "" {
		o.Algo = AlgoAuto
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.Channels <= 0 {
		o.Channels = DefaultChannels
	}
	if o.SmallMax > 0 || o.Algo != AlgoAuto {
		o.Tune = false // the caller chose
	}
	if o.SmallMax <= 0 {
		o.SmallMax = SmallMaxFor(o.WorldSize)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.PeerTimeout <= 0 {
		o.PeerTimeout = DefaultPeerTimeout
	}
	switch {
	case o.WorldSize < 1:
		return o, fmt.Errorf("world size %d: %w", o.WorldSize, ErrInvalid)
	case o.Rank < 0 || o.Rank >= o.WorldSize:
		return o, fmt.Errorf("rank %d of %d: %w", o.Rank, o.WorldSize, ErrInvalid)
	case o.MasterAddr == "" && !(o.Rank == 0 && o.Listener != nil):
		return o, fmt.Errorf("no rendezvous address (MASTER_ADDR/MASTER_PORT): %w", ErrInvalid)
	case o.Channels > 64:
		return o, fmt.Errorf("channels %d > 64: %w", o.Channels, ErrInvalid)
	case o.ChunkBytes < 64:
		return o, fmt.Errorf("chunk %d bytes < 64: %w", o.ChunkBytes, ErrInvalid)
	}
	switch o.Algo {
	case AlgoAuto, AlgoRing, AlgoRD:
	default:
		return o, fmt.Errorf("algorithm %q (want auto, ring or rd): %w", o.Algo, ErrInvalid)
	}
	if o.RDMA != nil {
		switch o.RDMA.Name() {
		case "auto", "tcp", "shm", "":
			return o, fmt.Errorf("the auto transport between hosts (Options.RDMA) names itself %q: %w", o.RDMA.Name(), ErrInvalid)
		}
	}
	switch o.TransportName {
	case "auto", "tcp", "shm":
	default:
		if _, ok := registeredTransport(o.TransportName); !ok && o.Transport == nil {
			return o, fmt.Errorf("transport %q (want auto, tcp, shm or a registered one such as rdma, which needs its package imported): %w", o.TransportName, ErrInvalid)
		}
	}
	return o, nil
}

// parseBytes parses "4096", "64K", "1M", "2MiB", "1G".
func parseBytes(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	u := strings.ToUpper(s)
	for _, suf := range []struct {
		s string
		m int
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(u, suf.s) {
			mult = suf.m
			s = s[:len(s)-len(suf.s)]
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

// ParseBytes parses a byte size such as "8", "64K", "256M" or "1GiB".
func ParseBytes(s string) (int, error) { return parseBytes(s) }

// SmallMaxFor is the default recursive-doubling/ring crossover for a world
// size. Recursive doubling moves log2(n) full buffers per rank in log2(n)
// steps, the ring 2(n-1)/n of one in 2(n-1) pipelined steps, so the
// crossover falls as n grows. The values come from the tuning pass of
// `ark bench allreduce` on a 2-core VM (loopback TCP and /dev/shm, process
// ranks), where it fell between 128 and 512 KiB for 2 and 4 ranks, taken
// at the low end; re-run the pass on real fabric and set ARK_COLL_SMALL_MAX.
func SmallMaxFor(n int) int {
	switch {
	case n <= 4:
		return 128 << 10
	case n <= 8:
		return 64 << 10
	}
	return 32 << 10
}

// ifaceIP resolves an NCCL_SOCKET_IFNAME-style list ("ib,eth" prefixes,
// "^docker" exclusions, "=eth0" exact) to the first IPv4 address of a
// matching, up interface.
func ifaceIP(spec string) (string, error) {
	var want, avoid []string
	exact := strings.HasPrefix(spec, "=")
	for _, p := range strings.Split(strings.TrimPrefix(spec, "="), ",") {
		switch p = strings.TrimSpace(p); {
		case p == "":
		case strings.HasPrefix(p, "^"):
			avoid = append(avoid, p[1:])
		default:
			want = append(want, p)
		}
	}
	match := func(name, p string) bool {
		if exact {
			return name == p
		}
		return strings.HasPrefix(name, p)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		ok := len(want) == 0
		for _, p := range want {
			ok = ok || match(ifc.Name, p)
		}
		for _, p := range avoid {
			ok = ok && !match(ifc.Name, p)
		}
		if !ok {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, isNet := a.(*net.IPNet); isNet && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", fmt.Errorf("no up interface with an IPv4 address matches %q", spec)
}
