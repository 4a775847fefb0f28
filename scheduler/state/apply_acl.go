package state

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// ACL state: policies by name and tokens by accessor ID and by the digest of
// their secret. The FSM's checks are plain (names unique, bootstrap once,
// the policies a token names exist); what a policy means is decided by the
// servers when a request comes, never here.

// Tables of ACL state.
const (
	tableACLPolicies = "acl_policies"
	tableACLTokens   = "acl_tokens"
	// aclBootstrapKey is the tableIndex entry that records the index of
	// the bootstrap: present means done.
	aclBootstrapKey = "acl_bootstrap"
)

// Table names, for Index.
const (
	TableACLPolicies = tableACLPolicies
	TableACLTokens   = tableACLTokens
)

// ACLToken is a token as the state keeps it: its secret only as a SHA-256
// digest (hex), so that a snapshot or a Raft log leaks no usable secret.
type ACLToken struct {
	AccessorID string
	SecretHash string
	Name       string
	Type       string
	Policies   []string
	CreateTime time.Time
	// ExpirationTime is zero for a token that never expires.
	ExpirationTime time.Time
	CreateIndex    uint64
}

// Expired reports whether the token has expired at now.
func (t *ACLToken) Expired(now time.Time) bool {
	return !t.ExpirationTime.IsZero() && !now.Before(t.ExpirationTime)
}

// API returns the token's public description (no secret).
func (t *ACLToken) API() *api.ACLToken {
	out := &api.ACLToken{
		AccessorID: t.AccessorID, Name: t.Name, Type: t.Type,
		Policies: slices.Clone(t.Policies), CreateTime: t.CreateTime, CreateIndex: t.CreateIndex,
	}
	if !t.ExpirationTime.IsZero() {
		exp := t.ExpirationTime
		out.ExpirationTime = &exp
	}
	return out
}

// ACLBootstrapRequest stores the first management token. It is refused
// once a bootstrap has been applied.
type ACLBootstrapRequest struct {
	Token *ACLToken `json:"token"`
}

// ACLUpsertPolicyRequest creates or replaces a policy by name.
type ACLUpsertPolicyRequest struct {
	Policy *api.ACLPolicy `json:"policy"`
}

// ACLDeletePolicyRequest deletes a policy; tokens naming it lose what it
// granted.
type ACLDeletePolicyRequest struct {
	Name string `json:"name"`
}

// ACLUpsertTokenRequest creates a token. Accessor IDs and secrets are
// never reused: a second token with either is refused.
type ACLUpsertTokenRequest struct {
	Token *ACLToken `json:"token"`
}

// ACLDeleteTokenRequest deletes a token by accessor ID.
type ACLDeleteTokenRequest struct {
	AccessorID string `json:"accessorId"`
}

func aclSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableACLPolicies: {Name: tableACLPolicies, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		}},
		tableACLTokens: {Name: tableACLTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccessorID"}},
			"secret": {Name: "secret", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretHash"}},
		}},
	}
}

func applyACLBootstrap(txn *memdb.Txn, index uint64, req *ACLBootstrapRequest) error {
	if raw, _ := txn.First(tableIndex, "id", aclBootstrapKey); raw != nil {
		return fmt.Errorf("ACL bootstrap already done (at index %d): %w", raw.(*indexEntry).Value, ErrConflict)
	}
	if req.Token == nil || req.Token.Type != api.ACLManagementToken {
		return fmt.Errorf("ACL bootstrap: want a management token")
	}
	if err := insertToken(txn, index, req.Token); err != nil {
		return err
	}
	return setIndex(txn, aclBootstrapKey, index)
}

func applyACLUpsertPolicy(txn *memdb.Txn, index uint64, req *ACLUpsertPolicyRequest) error {
	if req.Policy == nil || req.Policy.Name == "" {
		return fmt.Errorf("upsert ACL policy: missing policy or name")
	}
	p := *req.Policy
	p.CreateIndex, p.ModifyIndex = index, index
	if raw, _ := txn.First(tableACLPolicies, "id", p.Name); raw != nil {
		p.CreateIndex = raw.(*api.ACLPolicy).CreateIndex
	}
	if err := txn.Insert(tableACLPolicies, &p); err != nil {
		return fmt.Errorf("upsert ACL policy %s: %w", p.Name, err)
	}
	return setIndex(txn, tableACLPolicies, index)
}

func applyACLDeletePolicy(txn *memdb.Txn, index uint64, req *ACLDeletePolicyRequest) error {
	raw, _ := txn.First(tableACLPolicies, "id", req.Name)
	if raw == nil {
		return fmt.Errorf("ACL policy %q: %w", req.Name, ErrNotFound)
	}
	if err := txn.Delete(tableACLPolicies, raw); err != nil {
		return fmt.Errorf("delete ACL policy %s: %w", req.Name, err)
	}
	return setIndex(txn, tableACLPolicies, index)
}

func applyACLUpsertToken(txn *memdb.Txn, index uint64, req *ACLUpsertTokenRequest) error {
	if req.Token == nil {
		return fmt.Errorf("upsert ACL token: missing token")
	}
	for _, name := range req.Token.Policies {
		if raw, _ := txn.First(tableACLPolicies, "id", name); raw == nil {
			return fmt.Errorf("ACL policy %q: %w", name, ErrNotFound)
		}
	}
	return insertToken(txn, index, req.Token)
}

func insertToken(txn *memdb.Txn, index uint64, tok *ACLToken) error {
	if tok.AccessorID == "" || tok.SecretHash == "" {
		return fmt.Errorf("ACL token: missing accessor ID or secret digest")
	}
	if raw, _ := txn.First(tableACLTokens, "id", tok.AccessorID); raw != nil {
		return fmt.Errorf("ACL token %s exists: %w", tok.AccessorID, ErrConflict)
	}
	if raw, _ := txn.First(tableACLTokens, "secret", tok.SecretHash); raw != nil {
		return fmt.Errorf("ACL token secret is already in use: %w", ErrConflict)
	}
	t := *tok
	t.Policies = slices.Clone(tok.Policies)
	t.CreateIndex = index
	if err := txn.Insert(tableACLTokens, &t); err != nil {
		return fmt.Errorf("insert ACL token %s: %w", t.AccessorID, err)
	}
	return setIndex(txn, tableACLTokens, index)
}

func applyACLDeleteToken(txn *memdb.Txn, index uint64, req *ACLDeleteTokenRequest) error {
	raw, _ := txn.First(tableACLTokens, "id", req.AccessorID)
	if raw == nil {
		return fmt.Errorf("ACL token %q: %w", req.AccessorID, ErrNotFound)
	}
	if err := txn.Delete(tableACLTokens, raw); err != nil {
		return fmt.Errorf("delete ACL token %s: %w", req.AccessorID, err)
	}
	return setIndex(txn, tableACLTokens, index)
}

// ACLBootstrapped reports whether the ACL bootstrap was applied.
func (s *Snapshot) ACLBootstrapped() bool { return s.Index(aclBootstrapKey) > 0 }

// ACLPolicy returns a policy by name, or nil.
func (s *Snapshot) ACLPolicy(ws memdb.WatchSet, name string) *api.ACLPolicy {
	return first[*api.ACLPolicy](ws, s.txn, tableACLPolicies, "id", name)
}

// ACLPolicies returns every policy, by name.
func (s *Snapshot) ACLPolicies(ws memdb.WatchSet) []*api.ACLPolicy {
	return collect[*api.ACLPolicy](ws, s.txn, tableACLPolicies, "id")
}

// ACLToken returns a token by accessor ID, or nil.
func (s *Snapshot) ACLToken(ws memdb.WatchSet, accessor string) *ACLToken {
	return first[*ACLToken](ws, s.txn, tableACLTokens, "id", accessor)
}

// ACLTokenBySecretHash returns the token whose secret has this digest
// (hex SHA-256), or nil.
func (s *Snapshot) ACLTokenBySecretHash(hash string) *ACLToken {
	return first[*ACLToken](nil, s.txn, tableACLTokens, "secret", hash)
}

// ACLTokens returns every token, oldest first.
func (s *Snapshot) ACLTokens(ws memdb.WatchSet) []*ACLToken {
	toks := collect[*ACLToken](ws, s.txn, tableACLTokens, "id")
	sort.SliceStable(toks, func(i, k int) bool { return toks[i].CreateIndex < toks[k].CreateIndex })
	return toks
}

// NamespaceUsage is what a namespace's unfinished jobs hold: what ACL
// limits are checked against.
type NamespaceUsage struct {
	Pending, Running int
	// GPUMilli is the GPU the pending and running jobs ask for, in
	// thousandths of a GPU.
	GPUMilli int64
}
