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
)

// TestMain doubles as a rank process for TestKillProcess: with
// ARK_COLL_TEST_CHILD=1 the test binary joins the group from the
// environment Ark sets and all-reduces until it fails.
func TestMain(m *testing.M) {
	if os.Getenv("ARK_COLL_TEST_CHILD") == "1" {
		os.Exit(childRank())
	}
	os.Exit(m.Run())
}

func childRank() int {
	ctx := context.Background()
	c, err := collective.NewFromEnv(ctx)
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

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestKillProcess runs 3 ranks as processes, SIGKILLs one mid-all-reduce and
// checks both survivors exit with an error naming it, well before the deadline.
// With SIGSTOP the victim is frozen, not dead: its heartbeats stop and the
// survivors must name it as stalled after ARK_COLL_PEER_TIMEOUT (1 s here).
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
			port := freePort(t)
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
					"ARK_COLL_TRANSPORT="+transport, "ARK_COLL_TIMEOUT=30s", "ARK_COLL_CHUNK=16K",
					"ARK_COLL_PEER_TIMEOUT=1s")
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
				case <-time.After(30 * time.Second):
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
				case <-time.After(25 * time.Second):
					t.Fatalf("rank %d did not fail", r)
				}
			}
		})
	}
}
