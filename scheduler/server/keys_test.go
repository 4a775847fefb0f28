package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/storage/crypt"
)

// keyServer is nodeACLServer with a cluster key: namespaces get
// checkpoint keys.
func keyServer(t *testing.T) (*Server, string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	if err := CreateClusterKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadClusterKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	none := Limits{}
	return tokenServer(t, Config{ClusterKey: ck, DataDir: dir, Limits: &none}), dir
}

// getRaw answers a GET's body as bytes.
func getRaw(t *testing.T, s *Server, token, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTPAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// TestNamespaceKeyDelivery: a namespace's checkpoint key reaches only the
// node that runs one of its allocations, asking with its node secret; no
// other answer, the Raft log or a snapshot holds it unwrapped.
func TestNamespaceKeyDelivery(t *testing.T) {
	s, dir := keyServer(t)
	ctx := context.Background()
	x, y, job, alloc := twoNodes(t, s)
	nodeX, nodeY, mgmt, nlp := as(t, s, x.Secret), as(t, s, y.Secret), as(t, s, mgmtTok), as(t, s, nlpTok)

	allocs, _, err := nodeX.NodeAllocations(ctx, x.ID, 0, 0)
	if err != nil || len(allocs) != 1 || allocs[0].CheckpointKey == nil {
		t.Fatalf("node X's allocations: %+v, %v; want one carrying its checkpoint key", allocs, err)
	}
	key := allocs[0].CheckpointKey
	rec := s.Store().Snapshot().NamespaceKey(nil, "nlp")
	if len(key.Key) != crypt.KeySize || rec == nil || key.ID != rec.KeyID || bytes.Contains(rec.Wrapped, key.Key) {
		t.Fatalf("delivered key %s (%d bytes), state record %+v", key.ID, len(key.Key), rec)
	}
	// The key the task gets opens nothing of another cluster key's: the
	// record is sealed under the cluster key, bound to its namespace.
	if _, err := s.cfg.ClusterKey.unwrap("vision", rec.KeyID, rec.Wrapped); !errors.Is(err, crypt.ErrAuth) {
		t.Fatalf("nlp's wrapped key opened as vision's: %v", err)
	}

	raw, b64 := key.Key, []byte(base64.StdEncoding.EncodeToString(key.Key))
	leaks := func(where string, b []byte) {
		t.Helper()
		if bytes.Contains(b, raw) || bytes.Contains(b, b64) {
			t.Errorf("the checkpoint key appears in %s", where)
		}
	}
	// Everyone else: node Y is refused; management, the tenant and the
	// allocation's own record get no key.
	if _, _, err := nodeY.NodeAllocations(ctx, x.ID, 0, 0); !isForbidden(err) {
		t.Errorf("node Y lists node X's allocations: %v", err)
	}
	if all, _, err := mgmt.NodeAllocations(ctx, x.ID, 0, 0); err != nil || all[0].CheckpointKey != nil {
		t.Errorf("management's list of node X's allocations: %+v, %v; want no key", all, err)
	}
	for _, c := range []struct{ tok, path string }{
		{nlpTok, "/v1/jobs"}, {nlpTok, "/v1/jobs/" + job}, {mgmtTok, "/v1/jobs"},
		{mgmtTok, "/v1/nodes/" + x.ID + "/allocations"}, {x.Secret, "/v1/allocations/" + alloc.ID},
		{y.Secret, "/v1/nodes/" + x.ID + "/allocations"}, {agentTok, "/v1/nodes/" + x.ID + "/allocations"},
	} {
		leaks("GET "+c.path+" as "+c.tok[:4], getRaw(t, s, c.tok, c.path))
	}
	if jobs, err := nlp.Jobs(ctx, ""); err != nil || len(jobs) != 1 || jobs[0].Allocations[0].CheckpointKey != nil {
		t.Errorf("GET /v1/jobs: %v", err)
	}
	snap, err := mgmt.SnapshotSave(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := io.ReadAll(snap)
	snap.Close()
	if !bytes.Contains(sb, []byte(rec.KeyID)) {
		t.Fatal("the snapshot lacks the namespace key record")
	}
	leaks("a snapshot", sb)
	var logs int
	filepath.WalkDir(filepath.Join(dir, "raft"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(rec.KeyID)) {
				logs++
			}
			leaks(p, b)
		}
		return nil
	})
	if logs == 0 {
		t.Fatal("no Raft file holds the key's record: the grep looked in the wrong place")
	}

	// Another namespace gets a key of its own.
	vision := as(t, s, visionTok)
	if _, err := vision.SubmitJob(ctx, []byte(`{"name":"v","namespace":"vision","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`)); err != nil {
		t.Fatal(err)
	}
	if v := s.Store().Snapshot().NamespaceKey(nil, "vision"); v == nil || v.KeyID == rec.KeyID {
		t.Fatalf("vision's key %+v", v)
	}

	// Deleting nlp's key: management only; the next job gets a new key.
	if _, err := nlp.DeleteNamespaceKey(ctx, "nlp"); !isForbidden(err) {
		t.Fatalf("a tenant deleted its namespace key: %v", err)
	}
	del, err := mgmt.DeleteNamespaceKey(ctx, "nlp")
	if err != nil || del.KeyID != rec.KeyID {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	if got := s.Store().Snapshot().NamespaceKey(nil, "nlp"); got != nil {
		t.Fatalf("deleted key still in the state: %+v", got)
	}
	if _, err := mgmt.DeleteNamespaceKey(ctx, "nlp"); !client.IsNotFound(err) {
		t.Fatalf("delete again: %v, want 404", err)
	}
	if _, err := nlp.SubmitJob(ctx, []byte(`{"name":"two","namespace":"nlp","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`)); err != nil {
		t.Fatal(err)
	}
	if got := s.Store().Snapshot().NamespaceKey(nil, "nlp"); got == nil || got.KeyID == rec.KeyID {
		t.Fatalf("nlp's new key %+v, want a new one", got)
	}
	var body bytes.Buffer
	json.NewEncoder(&body).Encode(allocs)
	if !strings.Contains(body.String(), `"checkpointKey"`) {
		t.Fatal("the node's answer lost the key field")
	}
}

func TestLoadClusterKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := CreateClusterKeyFile(good); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(good)
	if err := CreateClusterKeyFile(good); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(good); !bytes.Equal(before, after) {
		t.Fatal("CreateClusterKeyFile replaced an existing key")
	}
	if fi, _ := os.Stat(good); fi.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %v", fi.Mode())
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, before, 0o644)
	os.Chmod(open, 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600)
	for _, tt := range []struct {
		path, want string
	}{
		{good, ""},
		{open, "mode 0644"},
		{short, "want 32 bytes"},
		{filepath.Join(dir, "none"), "no such file"},
	} {
		_, err := LoadClusterKey(tt.path)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("LoadClusterKey(%s) = %v, want %q", filepath.Base(tt.path), err, tt.want)
		}
	}
}

func isForbidden(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden
}
