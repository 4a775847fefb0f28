package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Namespace checkpoint keys: one data key per namespace, with which its
// tasks seal the checkpoints they write. The state holds each key only
// wrapped (sealed by the servers under the cluster key, which never enters
// Raft), so that neither the Raft log nor a snapshot yields a usable key.
// The FSM's checks are plain: one key per namespace, created once; what
// the wrapped bytes mean is the servers' business.

const tableNamespaceKeys = "namespace_keys"

// TableNamespaceKeys is the table's name, for Index.
const TableNamespaceKeys = tableNamespaceKeys

// NamespaceKey is a namespace's checkpoint data key as the state keeps it.
type NamespaceKey struct {
	Namespace string
	// KeyID names the key in the manifests of the checkpoints it seals.
	KeyID string
	// Wrapped is the key sealed under the cluster key (nonce and
	// ciphertext, see the servers' keys.go).
	Wrapped     []byte
	CreateIndex uint64
}

// NamespaceKeyCreateRequest stores a namespace's first data key. A second
// key for a namespace that has one is refused (ErrConflict): two leaders'
// worth of submissions racing to create it keep the first.
type NamespaceKeyCreateRequest struct {
	Key *NamespaceKey `json:"key"`
}

// NamespaceKeyDeleteRequest forgets a namespace's data key: what it sealed
// can no longer be read.
type NamespaceKeyDeleteRequest struct {
	Namespace string `json:"namespace"`
}

func keysSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableNamespaceKeys: {Name: tableNamespaceKeys, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Namespace"}},
		}},
	}
}

func applyNamespaceKeyCreate(txn *memdb.Txn, index uint64, req *NamespaceKeyCreateRequest) error {
	k := req.Key
	if k == nil || k.Namespace == "" || k.KeyID == "" || len(k.Wrapped) == 0 {
		return fmt.Errorf("create namespace key: missing namespace, key ID or wrapped key")
	}
	if raw, _ := txn.First(tableNamespaceKeys, "id", k.Namespace); raw != nil {
		return fmt.Errorf("namespace %q has a checkpoint key (%s): %w", k.Namespace, raw.(*NamespaceKey).KeyID, ErrConflict)
	}
	c := *k
	c.Wrapped = append([]byte(nil), k.Wrapped...)
	c.CreateIndex = index
	if err := txn.Insert(tableNamespaceKeys, &c); err != nil {
		return fmt.Errorf("insert namespace key %s: %w", c.Namespace, err)
	}
	return setIndex(txn, tableNamespaceKeys, index)
}

func applyNamespaceKeyDelete(txn *memdb.Txn, index uint64, req *NamespaceKeyDeleteRequest) error {
	raw, _ := txn.First(tableNamespaceKeys, "id", req.Namespace)
	if raw == nil {
		return fmt.Errorf("checkpoint key of namespace %q: %w", req.Namespace, ErrNotFound)
	}
	if err := txn.Delete(tableNamespaceKeys, raw); err != nil {
		return fmt.Errorf("delete namespace key %s: %w", req.Namespace, err)
	}
	return setIndex(txn, tableNamespaceKeys, index)
}

// NamespaceKey returns a namespace's (wrapped) data key, or nil.
func (s *Snapshot) NamespaceKey(ws memdb.WatchSet, namespace string) *NamespaceKey {
	return first[*NamespaceKey](ws, s.txn, tableNamespaceKeys, "id", namespace)
}

// NamespaceKeys returns every namespace's (wrapped) data key, by namespace.
func (s *Snapshot) NamespaceKeys(ws memdb.WatchSet) []*NamespaceKey {
	return collect[*NamespaceKey](ws, s.txn, tableNamespaceKeys, "id")
}
