package state

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// SnapshotVersion is the format of state snapshots. A reader refuses a
// version it does not know rather than guess. Version 2 added ACL
// policies and tokens, version 3 namespace checkpoint keys (wrapped);
// version 4 the model catalog, version 5 kept job versions, version 6
// jobs' events, version 7 pending reasons kept beside their jobs; older
// versions (without them) are still read.
const SnapshotVersion = 7

// The snapshot format is a stream of JSON values: a header, then one record
// per object, then a trailer with the object count so a truncated stream is
// detected.
type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

type snapshotRecord struct {
	Index  *indexEntry     `json:"index,omitempty"`
	Job    *api.Job        `json:"job,omitempty"`
	Alloc  *api.Allocation `json:"alloc,omitempty"`
	Node   *api.Node       `json:"node,omitempty"`
	Server *api.Server     `json:"server,omitempty"`
	// Since version 2.
	ACLPolicy *api.ACLPolicy `json:"aclPolicy,omitempty"`
	ACLToken  *ACLToken      `json:"aclToken,omitempty"`
	// Since version 3.
	NamespaceKey *NamespaceKey `json:"namespaceKey,omitempty"`
	// Since version 4.
	Model *api.Model `json:"model,omitempty"`
	// Since version 5.
	JobVersion *api.JobVersion `json:"jobVersion,omitempty"`
	// Since version 7. Written apart from its job, not folded into it: a
	// restored server then keeps and drops kept reasons as the others do.
	KeptReason *keptReason `json:"keptReason,omitempty"`
	// End is set only on the trailer and holds the number of records.
	End *int `json:"end,omitempty"`
}

const snapshotFormat = "ark-state"

func writeSnapshot(w io.Writer, snap *Snapshot) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: SnapshotVersion}); err != nil {
		return err
	}
	n := 0
	put := func(r snapshotRecord) error { n++; return enc.Encode(r) }
	for _, t := range []string{tableJobs, tableAllocs, tableNodes, tableACLPolicies, tableACLTokens, aclBootstrapKey, tableNamespaceKeys, tableModels, tableJobVersions} {
		if i := snap.Index(t); i > 0 {
			if err := put(snapshotRecord{Index: &indexEntry{Key: t, Value: i}}); err != nil {
				return err
			}
		}
	}
	// The jobs as stored: their kept reasons are records of their own.
	for _, j := range sortJobs(collect[*api.Job](nil, snap.txn, tableJobs, "id")) {
		if err := put(snapshotRecord{Job: j}); err != nil {
			return err
		}
	}
	for _, a := range snap.Allocs(nil) {
		if err := put(snapshotRecord{Alloc: a}); err != nil {
			return err
		}
	}
	for _, nd := range snap.Nodes(nil) {
		if err := put(snapshotRecord{Node: nd}); err != nil {
			return err
		}
	}
	for _, sv := range snap.Servers() {
		if err := put(snapshotRecord{Server: sv}); err != nil {
			return err
		}
	}
	for _, p := range snap.ACLPolicies(nil) {
		if err := put(snapshotRecord{ACLPolicy: p}); err != nil {
			return err
		}
	}
	for _, tok := range snap.ACLTokens(nil) {
		if err := put(snapshotRecord{ACLToken: tok}); err != nil {
			return err
		}
	}
	for _, k := range snap.NamespaceKeys(nil) {
		if err := put(snapshotRecord{NamespaceKey: k}); err != nil {
			return err
		}
	}
	for _, m := range snap.Models(nil) {
		if err := put(snapshotRecord{Model: m}); err != nil {
			return err
		}
	}
	for _, v := range collect[*api.JobVersion](nil, snap.txn, tableJobVersions, "id") {
		if err := put(snapshotRecord{JobVersion: v}); err != nil {
			return err
		}
	}
	for _, kr := range collect[*keptReason](nil, snap.txn, tableReasons, "id") {
		if err := put(snapshotRecord{KeptReason: kr}); err != nil {
			return err
		}
	}
	if err := enc.Encode(snapshotRecord{End: &n}); err != nil {
		return err
	}
	return bw.Flush()
}

func readSnapshot(r io.Reader) (*memdb.MemDB, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	dec.DisallowUnknownFields()
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("not an Ark state snapshot (format %q)", h.Format)
	}
	if h.Version < 1 || h.Version > SnapshotVersion {
		return nil, fmt.Errorf("snapshot version %d is not supported (this server reads versions 1 to %d)", h.Version, SnapshotVersion)
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for n := 0; ; n++ {
		var rec snapshotRecord
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("read record %d: %w (truncated snapshot?)", n, err)
		}
		var table string
		var obj any
		switch {
		case rec.End != nil:
			if *rec.End != n {
				return nil, fmt.Errorf("snapshot has %d records, trailer says %d", n, *rec.End)
			}
			if err := recountJobs(txn); err != nil {
				return nil, err
			}
			if err := showKeptReasons(txn); err != nil {
				return nil, err
			}
			txn.Commit()
			return db, nil
		case rec.Index != nil:
			table, obj = tableIndex, rec.Index
		case rec.Job != nil:
			table, obj = tableJobs, rec.Job
		case rec.Alloc != nil:
			table, obj = tableAllocs, rec.Alloc
		case rec.Node != nil:
			table, obj = tableNodes, rec.Node
		case rec.Server != nil:
			table, obj = tableServers, rec.Server
		case rec.ACLPolicy != nil && h.Version >= 2:
			table, obj = tableACLPolicies, rec.ACLPolicy
		case rec.ACLToken != nil && h.Version >= 2:
			table, obj = tableACLTokens, rec.ACLToken
		case rec.NamespaceKey != nil && h.Version >= 3:
			table, obj = tableNamespaceKeys, rec.NamespaceKey
		case rec.Model != nil && h.Version >= 4:
			table, obj = tableModels, rec.Model
		case rec.JobVersion != nil && h.Version >= 5:
			table, obj = tableJobVersions, rec.JobVersion
		case rec.KeptReason != nil && h.Version >= 7:
			table, obj = tableReasons, rec.KeptReason
		default:
			return nil, fmt.Errorf("record %d is empty", n)
		}
		if err := txn.Insert(table, obj); err != nil {
			return nil, fmt.Errorf("record %d: insert into %s: %w", n, table, err)
		}
	}
}

// WriteSnapshot writes a state snapshot (the format Raft snapshots use) of
// snap to w: what `ark operator snapshot save` stores.
func WriteSnapshot(w io.Writer, snap *Snapshot) error { return writeSnapshot(w, snap) }

// CheckSnapshot reads a whole snapshot and reports whether it would
// restore: format, version, every record, and the trailer.
func CheckSnapshot(r io.Reader) error {
	_, err := readSnapshot(r)
	return err
}
