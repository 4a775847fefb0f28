package agent

import (
	"bytes"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/worker/inventory"
)

// TestCheckpointKeyFile: an allocation's key reaches its task as a file
// only its user can read, named by ARK_CHECKPOINT_KEY_FILE; an allocation
// without a key gets neither.
func TestCheckpointKeyFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := &Agent{cfg: Config{Name: "n1", Address: "127.0.0.1"}, ln: ln, inv: &inventory.Inventory{Fake: true}}
	key := &api.CheckpointKey{ID: "nk-1", Key: bytes.Repeat([]byte{7}, 32)}
	taskUser, wantUID := "", os.Geteuid()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("no user nobody")
		}
		taskUser = "nobody"
		wantUID, _ = strconv.Atoi(u.Uid)
	}
	for _, tt := range []struct {
		name string
		key  *api.CheckpointKey
	}{{"with a key", key}, {"without", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "allocs", "a1")
			al := &api.Allocation{ID: "a1", CheckpointKey: tt.key}
			if tt.key != nil {
				// Something left at the path (a link) is replaced, never followed.
				os.MkdirAll(dir, 0o711)
				target := filepath.Join(t.TempDir(), "target")
				os.WriteFile(target, []byte("keep"), 0o600)
				os.Symlink(target, filepath.Join(dir, checkpointKeyFile))
				defer func() {
					if b, _ := os.ReadFile(target); string(b) != "keep" {
						t.Error("the key was written through a link")
					}
				}()
			}
			if err := writeCheckpointKey(al, dir, taskUser); err != nil {
				t.Fatal(err)
			}
			var env string
			for _, kv := range a.taskEnv(al, dir) {
				if v, ok := strings.CutPrefix(kv, "ARK_CHECKPOINT_KEY_FILE="); ok {
					env = v
				}
				if strings.Contains(kv, "BwcHBwcH") {
					t.Errorf("the key is in the task's environment: %s", kv)
				}
			}
			path := filepath.Join(dir, checkpointKeyFile)
			if tt.key == nil {
				if _, err := os.Lstat(path); err == nil || env != "" {
					t.Fatalf("keyless allocation: file %v, env %q", err, env)
				}
				return
			}
			if env != path {
				t.Fatalf("ARK_CHECKPOINT_KEY_FILE = %q, want %s", env, path)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode() != 0o400 || int(st.Uid) != wantUID {
				t.Fatalf("key file mode %v owner %d, want 0400 owned by %d", fi.Mode(), st.Uid, wantUID)
			}
			b, _ := os.ReadFile(path)
			if string(b) != "nk-1 BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n" {
				t.Fatalf("key file holds %q", b)
			}
		})
	}
}
