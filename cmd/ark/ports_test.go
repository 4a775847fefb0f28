package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// freePort returns a loopback port for an ark process to listen on, kept
// for this test binary alone until it exits.
//
// The test cannot hold a listener until the server binds (ark server has no
// way to take one over), and restarted servers must come back on the same
// addresses (the others' --join lists, the Raft configuration). A port from
// 127.0.0.1:0, released before the server binds it, can meanwhile go to any
// other process: the kernel hands the same ephemeral range to every :0
// listener and outgoing connection. So ports come from below that range,
// which the kernel never hands out by itself, and a lock file per port keeps
// test binaries running at the same time (other packages, other checkouts)
// apart. Only a program that binds a fixed port there can still collide.
func freePort(t *testing.T) int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		t.Fatalf("no room for test ports below the ephemeral range (%d)", hi)
	}
	dir := filepath.Join(os.TempDir(), "ark-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	first := lo + rand.IntN(hi-lo)
	for i := 0; i < hi-lo; i++ {
		port := lo + (first-lo+i)%(hi-lo)
		if reservePort(dir, port) {
			return port
		}
	}
	t.Fatalf("no free port in [%d, %d)", lo, hi)
	return 0
}

// reservePort takes port's lock file and checks nothing listens on it. The
// lock is held, by its open descriptor, until the process exits: flock
// locks belong to the open file, so a second reservation of the same port
// in this process fails as it would in another.
func reservePort(dir string, port int) bool {
	heldMu.Lock()
	defer heldMu.Unlock()
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		f.Close() // someone else's fixed port
		return false
	}
	ln.Close()
	heldPorts = append(heldPorts, f)
	return true
}

// heldPorts keeps the lock files of reserved ports open (and so locked).
var (
	heldMu    sync.Mutex
	heldPorts []*os.File
)

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768 // Linux's default
}

// TestFreePortReserved: a reserved port is refused to a second reservation
// (here or in another test binary) and so is a port someone listens on.
func TestFreePortReserved(t *testing.T) {
	port := freePort(t)
	if port >= ephemeralLow() {
		t.Errorf("port %d is in the ephemeral range", port)
	}
	dir := filepath.Join(os.TempDir(), "ark-test-ports")
	if reservePort(dir, port) {
		t.Errorf("port %d reserved twice", port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if reservePort(t.TempDir(), ln.Addr().(*net.TCPAddr).Port) {
		t.Errorf("reserved port %d that is in use", ln.Addr().(*net.TCPAddr).Port)
	}
}
