package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/ark-sched/ark/internal/secretfile"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
	"github.com/ark-sched/ark/storage/crypt"
)

// Checkpoint encryption. Each namespace has a data key (32 random bytes)
// with which its tasks seal the checkpoints they write (storage/crypt,
// AES-256-GCM). The leader creates it the first time one of the
// namespace's jobs is submitted and stores it in the Raft state only
// wrapped: sealed with AES-256-GCM under the cluster key, a key-encryption
// key every server reads from the same file (--cluster-key-file) and that
// never enters Raft, with the namespace and key ID as associated data (a
// wrapped key moved to another namespace's record does not open). A task
// gets its namespace's key from its agent, which gets it unwrapped only
// when it lists its own node's allocations with its node secret.
//
// Deleting a namespace's key (ark operator namespace-key delete) makes its
// checkpoints unreadable for good; the namespace's next job gets a new one.
// Servers without a cluster key create no keys and tasks write plain
// checkpoints.

// ClusterKey is the servers' key-encryption key.
type ClusterKey struct {
	aead cipher.AEAD
}

// NewClusterKey returns a cluster key from 32 raw bytes.
func NewClusterKey(raw []byte) (*ClusterKey, error) {
	if len(raw) != crypt.KeySize {
		return nil, fmt.Errorf("cluster key is %d bytes, want %d", len(raw), crypt.KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	return &ClusterKey{aead: aead}, nil
}

// LoadClusterKey reads a cluster key file: 32 bytes as base64 or hex on
// one line. The file must be the owner's alone (mode 0600 or 0400): the
// key opens every namespace's checkpoints.
func LoadClusterKey(path string) (*ClusterKey, error) {
	if err := secretfile.Check(path); err != nil {
		return nil, fmt.Errorf("cluster key file: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key file: %w", err)
	}
	raw, err := rawKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("cluster key file %s: %w", path, err)
	}
	return NewClusterKey(raw)
}

// rawKey decodes a key given as crypt.ParseKey takes it.
func rawKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.URLEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, hex.DecodeString,
	} {
		if raw, err := dec(s); err == nil && len(raw) == crypt.KeySize {
			return raw, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as base64 or hex", crypt.KeySize)
}

// CreateClusterKeyFile writes a new random cluster key to path (mode
// 0600); an existing file is kept, never overwritten.
func CreateClusterKeyFile(path string) error {
	raw := make([]byte, crypt.KeySize)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create cluster key file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write cluster key file: %w", err)
	}
	return nil
}

// keyAAD binds a wrapped key to its namespace and ID.
func keyAAD(namespace, keyID string) []byte {
	return []byte("ark-namespace-key-v1\x00" + namespace + "\x00" + keyID)
}

// wrap seals a data key: nonce then ciphertext.
func (c *ClusterKey) wrap(namespace, keyID string, key []byte) []byte {
	nonce := make([]byte, c.aead.NonceSize())
	rand.Read(nonce)
	return c.aead.Seal(nonce, nonce, key, keyAAD(namespace, keyID))
}

// unwrap opens what wrap sealed.
func (c *ClusterKey) unwrap(namespace, keyID string, wrapped []byte) ([]byte, error) {
	n := c.aead.NonceSize()
	if len(wrapped) < n {
		return nil, fmt.Errorf("checkpoint key %s of namespace %q: %w", keyID, namespace, crypt.ErrAuth)
	}
	key, err := c.aead.Open(nil, wrapped[:n], wrapped[n:], keyAAD(namespace, keyID))
	if err != nil {
		return nil, fmt.Errorf("checkpoint key %s of namespace %q does not open with this server's cluster key (every server needs the same --cluster-key-file): %w", keyID, namespace, crypt.ErrAuth)
	}
	return key, nil
}

// logKeyMode says once, at start, whether checkpoints are encrypted.
func (s *Server) logKeyMode() {
	if s.cfg.ClusterKey == nil {
		s.log.Warn("no cluster key: checkpoints are not encrypted (start every server with the same --cluster-key-file to encrypt them per namespace)")
	}
}

// ensureNamespaceKey creates namespace's data key if it has none (and the
// servers have a cluster key). It runs on the leader, before the job that
// needs the key is registered, so the key exists when the job is placed.
func (s *Server) ensureNamespaceKey(ctx context.Context, namespace string) error {
	if s.cfg.ClusterKey == nil || s.store.Snapshot().NamespaceKey(nil, namespace) != nil {
		return nil
	}
	raw := make([]byte, crypt.KeySize)
	id := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	rand.Read(id)
	keyID := "nk-" + hex.EncodeToString(id)
	rec := &state.NamespaceKey{Namespace: namespace, KeyID: keyID, Wrapped: s.cfg.ClusterKey.wrap(namespace, keyID, raw)}
	_, _, err := s.apply(ctx, state.NamespaceKeyCreateType, &state.NamespaceKeyCreateRequest{Key: rec})
	if errors.Is(err, state.ErrConflict) {
		return nil // a submission racing this one made it
	}
	if err != nil {
		return fmt.Errorf("create the checkpoint key of namespace %q: %w", namespace, err)
	}
	s.log.Info("created a namespace checkpoint key", zap.String("namespace", namespace), zap.String("key_id", keyID))
	return nil
}

// presentsNodeSecret reports whether r carries node id's own secret: the
// only caller that gets checkpoint keys (not management, not the agent
// token, not another node).
func presentsNodeSecret(r *http.Request, n *api.Node) bool {
	tok := bearer(r)
	if tok == "" || n == nil || n.SecretDigest == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(nodeSecretDigest(tok)), []byte(n.SecretDigest)) == 1
}

// withCheckpointKeys returns allocs with each live allocation carrying
// its job's namespace and, for a namespace that has a key, the key
// unwrapped: copies, the state's records stay keyless. A namespace with a key this server cannot unwrap
// is an error, not a keyless allocation: its task would write plain
// checkpoints next to sealed ones.
func (s *Server) withCheckpointKeys(snap *state.Snapshot, allocs []*api.Allocation) ([]*api.Allocation, error) {
	out := make([]*api.Allocation, len(allocs))
	keys := map[string]*api.CheckpointKey{}
	for i, a := range allocs {
		out[i] = a
		if a.DesiredStatus != api.DesiredRun || a.Terminal() {
			continue
		}
		j := snap.Job(nil, a.JobID)
		if j == nil {
			continue
		}
		k, seen := keys[j.Namespace]
		if !seen {
			rec := snap.NamespaceKey(nil, j.Namespace)
			if rec != nil {
				if s.cfg.ClusterKey == nil {
					return nil, fmt.Errorf("namespace %q has a checkpoint key but this server has no cluster key: start every server with the same --cluster-key-file", j.Namespace)
				}
				raw, err := s.cfg.ClusterKey.unwrap(j.Namespace, rec.KeyID, rec.Wrapped)
				if err != nil {
					return nil, err
				}
				k = &api.CheckpointKey{ID: rec.KeyID, Key: raw}
			}
			keys[j.Namespace] = k
		}
		c := *a
		c.Namespace, c.CheckpointKey = j.Namespace, k
		out[i] = &c
	}
	return out, nil
}

func (s *Server) keyRoutes(mux *routeMux) {
	mux.HandleFunc("DELETE /v1/operator/namespace-keys/{namespace}", s.auth(mgmtAccess, s.writeHandler(s.handleNamespaceKeyDelete)))
}

// handleNamespaceKeyDelete forgets a namespace's checkpoint key: every
// checkpoint it sealed becomes unreadable.
func (s *Server) handleNamespaceKeyDelete(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	rec := s.store.Snapshot().NamespaceKey(nil, ns)
	if rec == nil {
		s.fail(w, r, fmt.Errorf("checkpoint key of namespace %q: %w", ns, state.ErrNotFound))
		return
	}
	_, idx, err := s.apply(r.Context(), state.NamespaceKeyDeleteType, &state.NamespaceKeyDeleteRequest{Namespace: ns})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Warn("deleted a namespace checkpoint key: its checkpoints are unreadable", zap.String("namespace", ns), zap.String("key_id", rec.KeyID))
	writeJSON(w, http.StatusOK, api.NamespaceKeyDeleteResponse{Namespace: ns, KeyID: rec.KeyID, Index: idx})
}
