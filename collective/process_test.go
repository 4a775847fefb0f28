package collective_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ark-sched/ark/collective"
	"github.com/ark-sched/ark/internal/testenv"
)

// TestMain doubles as a rank process for TestKillProcess: with
// ARK_COLL_TEST_CHILD=1 the test binary joins the group from the
// environment Ark sets and all-reduces until it fails. Rank 0 serves the
// rendezvous on the listener the test hands it as file descriptor 3
// (listenerFD), so the port is never free for another process to take.
func TestMain(m *testing.M) {
	if os.Getenv("ARK_COLL_TEST_CHILD") == "1" {
		os.Exit(childRank())
	}
	os.Exit(m.Run())
}

// listenerFD is where rank 0 finds its rendezvous listener: the first of
// exec.Cmd.ExtraFiles.
const listenerFD = 3

func childRank() int {
	ctx := context.Background()
	o, err := collective.Options{}.FromEnv()
	if err == nil && o.Rank == 0 {
		o.Listener, err = net.FileListener(os.NewFile(listenerFD, "rendezvous"))
	}
	var c *collective.Communicator
	if err == nil {
		c, err = collective.New(ctx, o)
	}
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	defer c.Close()
	buf := make([]float32, 20_000)
	for i := 0; ; i++ {
		if err := c.AllReduce(ctx, collective.Float32s(buf), collective.Sum); err != nil {
			fmt.Println("ERR", err)
			return 1
		}
		if i == 0 {
			fmt.Println("READY")
		}
	}
}

// rendezvousListener listens on a free loopback port for rank 0. The test
// keeps it open until rank 0 has inherited it: a port found free and then
// closed could be taken by any other process before rank 0 bound it.
func rendezvousListener(t *testing.T) (*os.File, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // f is a duplicate, which keeps the socket open
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	return f, ln.Addr().(*net.TCPAddr).Port
}

// TestKillProcess runs 3 ranks as processes, SIGKILLs one mid-all-reduce and
// checks both survivors exit with an error naming it, well before the deadline.
// With SIGSTOP the victim is frozen, not dead: its heartbeats stop and the
// survivors must name it as stalled after ARK_COLL_PEER_TIMEOUT (1 s here,
// scaled by ARK_TEST_TIMEOUT_SCALE: a rank starved of CPU under -race must
// not be taken for a stalled one).
func TestKillProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, tc := range []struct {
		transport string
		sig       syscall.Signal
		want      string
	}{
		{"tcp", syscall.SIGKILL, "peer lost"}, {"shm", syscall.SIGKILL, "peer lost"},
		{"shm", syscall.SIGSTOP, "peer stalled"},
	} {
		transport := tc.transport
		t.Run(transport+"/"+tc.sig.String(), func(t *testing.T) {
			const n, victim = 3, 1
			lnFile, port := rendezvousListener(t)
			peerTimeout := testenv.Scale(time.Second)
			type child struct {
				cmd   *exec.Cmd
				lines chan string
			}
			kids := make([]child, n)
			for r := range n {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "ARK_COLL_TEST_CHILD=1",
					"RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(n),
					"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
					"ARK_COLL_TRANSPORT="+transport, "ARK_COLL_TIMEOUT="+testenv.Scale(30*time.Second).String(), "ARK_COLL_CHUNK=16K",
					"ARK_COLL_PEER_TIMEOUT="+peerTimeout.String())
				if r == 0 {
					cmd.ExtraFiles = []*os.File{lnFile} // listenerFD
				}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				lines := make(chan string, 16)
				go func() {
					s := bufio.NewScanner(out)
					for s.Scan() {
						lines <- s.Text()
					}
					close(lines)
				}()
				if r == 0 {
					lnFile.Close() // rank 0 holds the rendezvous now
				}
				kids[r] = child{cmd, lines}
				t.Cleanup(func() {
					cmd.Process.Signal(syscall.SIGCONT)
					cmd.Process.Kill()
					cmd.Wait()
				})
			}
			for r, k := range kids {
				select {
				case l := <-k.lines:
					if l != "READY" {
						t.Fatalf("rank %d: %s", r, l)
					}
				case <-time.After(testenv.Scale(30 * time.Second)):
					t.Fatalf("rank %d not ready", r)
				}
			}
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			if err := kids[victim].cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			for r, k := range kids {
				if r == victim {
					continue
				}
				select {
				case l := <-k.lines:
					if !strings.Contains(l, fmt.Sprintf("rank %d:", victim)) || !strings.Contains(l, tc.want) {
						t.Errorf("rank %d: %q does not name rank %d (%s)", r, l, victim, tc.want)
					}
					t.Logf("rank %d after %v: %s", r, time.Since(start).Round(time.Millisecond), l)
				case <-time.After(testenv.Scale(25 * time.Second)):
					t.Fatalf("rank %d did not fail", r)
				}
			}
		})
	}
}
