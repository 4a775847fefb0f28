package state

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

func applyUpsertNode(txn *memdb.Txn, index uint64, req *UpsertNodeRequest) error {
	n := req.Node
	if n == nil || n.ID == "" || n.Name == "" {
		return fmt.Errorf("upsert node: missing node, ID or name")
	}
	if raw, _ := txn.First(tableNodes, "name", n.Name); raw != nil {
		other := raw.(*api.Node)
		if other.ID != n.ID {
			if other.Status != api.NodeDown {
				return fmt.Errorf("node name %q is held by live node %s; it frees once that node misses its heartbeats: %w", n.Name, other.ID, ErrConflict)
			}
			// The old incarnation is down and its allocations were
			// marked lost when it went down: the name is free.
			if err := txn.Delete(tableNodes, other); err != nil {
				return err
			}
		}
	}
	nn := *n
	nn.Status = api.NodeReady
	nn.StatusInfo = ""
	nn.CreateIndex, nn.ModifyIndex = index, index
	if raw, _ := txn.First(tableNodes, "id", n.ID); raw != nil {
		old := raw.(*api.Node)
		nn.CreateIndex = old.CreateIndex
		nn.RegisterTime = old.RegisterTime
		// Eligibility and drain are the operator's: an agent that
		// restarts and registers again must not reopen its node.
		nn.Ineligible = old.Ineligible
		nn.Drain = old.Drain
	}
	if err := txn.Insert(tableNodes, &nn); err != nil {
		return fmt.Errorf("insert node %s: %w", n.Name, err)
	}
	return setIndex(txn, tableNodes, index)
}

func applyNodeStatus(txn *memdb.Txn, index uint64, req *NodeStatusRequest) error {
	raw, _ := txn.First(tableNodes, "id", req.NodeID)
	if raw == nil {
		return fmt.Errorf("node %s: %w", req.NodeID, ErrNotFound)
	}
	n := *raw.(*api.Node)
	if n.Status == req.Status {
		return nil
	}
	n.Status = req.Status
	n.StatusInfo = req.Info
	n.ModifyIndex = index
	if err := txn.Insert(tableNodes, &n); err != nil {
		return err
	}
	if err := setIndex(txn, tableNodes, index); err != nil {
		return err
	}
	if n.Status != api.NodeDown {
		return nil
	}
	// Every live allocation on a node that is down is lost, and so is the
	// gang it belongs to.
	jobs := map[string]bool{}
	lost := 0
	for _, a := range collect[*api.Allocation](nil, txn, tableAllocs, "node", n.ID) {
		if a.Terminal() {
			continue
		}
		na := *a
		na.Status = api.AllocLost
		na.DesiredStatus = api.DesiredStop
		na.Message = fmt.Sprintf("node %s is down: %s", n.Name, req.Info)
		na.FinishTime = timePtr(req.Time)
		na.ModifyIndex = index
		if err := txn.Insert(tableAllocs, &na); err != nil {
			return err
		}
		lost++
		// A service replaces the replica alone (apply_service.go).
		if svc, err := serviceAllocEnded(txn, index, &na, req.Time); err != nil {
			return err
		} else if !svc {
			jobs[a.JobID] = true
		}
	}
	if lost == 0 {
		return nil
	}
	if err := setIndex(txn, tableAllocs, index); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		if err := reconcileJob(txn, index, id, req.Time, req.StopCause); err != nil {
			return err
		}
	}
	return nil
}

func applyServer(txn *memdb.Txn, req *ServerRequest) error {
	if req.Server == nil || req.Server.Name == "" {
		return fmt.Errorf("server: missing name")
	}
	if req.Remove {
		if raw, _ := txn.First(tableServers, "id", req.Server.Name); raw != nil {
			return txn.Delete(tableServers, raw)
		}
		return nil
	}
	srv := *req.Server
	return txn.Insert(tableServers, &srv)
}

func applyNodeEligibility(txn *memdb.Txn, index uint64, req *NodeEligibilityRequest) error {
	raw, _ := txn.First(tableNodes, "id", req.NodeID)
	if raw == nil {
		return fmt.Errorf("node %s: %w", req.NodeID, ErrNotFound)
	}
	n := *raw.(*api.Node)
	if req.Eligible && n.Drain != nil {
		return fmt.Errorf("node %s is draining; cancel the drain first: %w", n.Name, ErrConflict)
	}
	n.Ineligible = !req.Eligible
	n.ModifyIndex = index
	if err := txn.Insert(tableNodes, &n); err != nil {
		return err
	}
	return setIndex(txn, tableNodes, index)
}

func applyNodeDrain(txn *memdb.Txn, index uint64, req *NodeDrainRequest) error {
	raw, _ := txn.First(tableNodes, "id", req.NodeID)
	if raw == nil {
		return fmt.Errorf("node %s: %w", req.NodeID, ErrNotFound)
	}
	n := *raw.(*api.Node)
	switch {
	case req.Complete && n.Drain == nil:
		return nil // cancelled meanwhile
	case req.Drain != nil:
		n.Ineligible = true
	}
	n.Drain = req.Drain
	n.ModifyIndex = index
	if err := txn.Insert(tableNodes, &n); err != nil {
		return err
	}
	return setIndex(txn, tableNodes, index)
}
