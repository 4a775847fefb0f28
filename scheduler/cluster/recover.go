package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// peersFileEntry is one server of a peers file, in Consul's peers.json
// format (raft.ReadConfigJSON's): operators who know that file know this one.
type peersFileEntry struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter"`
}

// ReadPeersFile reads the servers a recovered cluster is to have: a JSON
// list of {"id", "address", "non_voter"}. Errors name the file and the
// entry, so that an operator under pressure sees what to fix.
func ReadPeersFile(path string) ([]Peer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("peers file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []peersFileEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("peers file %s: want a JSON list of {\"id\", \"address\", \"non_voter\"}: %w", path, err)
	}
	var peers []Peer
	ids, addrs := map[string]bool{}, map[string]bool{}
	voters := 0
	for i, e := range entries {
		where := fmt.Sprintf("peers file %s: entry %d", path, i)
		switch {
		case strings.TrimSpace(e.ID) == "":
			return nil, fmt.Errorf("%s: id is empty (the server's --name)", where)
		case strings.TrimSpace(e.Address) == "":
			return nil, fmt.Errorf("%s (%s): address is empty (the server's --raft address)", where, e.ID)
		case ids[e.ID]:
			return nil, fmt.Errorf("%s: id %q is listed twice", where, e.ID)
		case addrs[e.Address]:
			return nil, fmt.Errorf("%s: address %q is listed twice", where, e.Address)
		}
		ids[e.ID], addrs[e.Address] = true, true
		if !e.NonVoter {
			voters++
		}
		peers = append(peers, Peer{ID: e.ID, Address: e.Address, Voter: !e.NonVoter})
	}
	if voters == 0 {
		return nil, fmt.Errorf("peers file %s: no voter listed (list at least the surviving server)", path)
	}
	return peers, nil
}

// Recover rewrites the Raft configuration of a stopped server's Raft data
// dir to exactly peers, for a cluster that lost its quorum for good. It
// replays the server's snapshot and log into fsm (which is then spent),
// and writes a new snapshot that carries the state with the new
// configuration; a server started on the dir afterwards elects a leader
// among peers alone. Entries the old cluster never committed but this
// server had in its log are kept: that is the price of recovering without
// a quorum, and why it is for a cluster that cannot come back otherwise.
func Recover(dataDir string, fsm raft.FSM, peers []Peer, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	dbPath := filepath.Join(dataDir, "raft.db")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("no raft log at %s (is the data dir right? the server's --data-dir holds raft/raft.db): %w", dbPath, err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        dbPath,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return fmt.Errorf("raft log %s is locked: stop the server using it before recovering", dbPath)
		}
		return fmt.Errorf("open raft log %s: %w", dbPath, err)
	}
	defer store.Close()
	hl := NewHCLog(log, "raft", HCLogLevel(log.Level()))
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, 3, hl.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store in %s: %w", dataDir, err)
	}
	var cfg raft.Configuration
	for _, p := range peers {
		s := raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address), Suffrage: raft.Voter}
		if !p.Voter {
			s.Suffrage = raft.Nonvoter
		}
		cfg.Servers = append(cfg.Servers, s)
	}
	rc := raft.DefaultConfig()
	// RecoverCluster validates the config but never runs a node: any ID
	// passes.
	rc.LocalID = "recover"
	rc.Logger = hl
	_, trans := raft.NewInmemTransport("")
	if err := raft.RecoverCluster(rc, fsm, store, store, snaps, trans, cfg); err != nil {
		return fmt.Errorf("recover raft configuration in %s: %w", dataDir, err)
	}
	return nil
}
