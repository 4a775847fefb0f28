package state

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// Tables.
const (
	tableJobs    = "jobs"
	tableAllocs  = "allocs"
	tableNodes   = "nodes"
	tableIndex   = "index"
	tableServers = "servers"
)

// indexEntry records the Raft index of the last write to a table.
type indexEntry struct {
	Key   string
	Value uint64
}

func schema() *memdb.DBSchema {
	id := func(field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: field}}
	}
	db := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableJobs: {Name: tableJobs, Indexes: map[string]*memdb.IndexSchema{
			// Keyed as StringFieldIndex keys them, without reflection
			// (job_indexes.go).
			"id":    {Name: "id", Unique: true, Indexer: jobStringIndex{"id", func(j *api.Job) string { return j.ID }}},
			"token": {Name: "token", Unique: true, AllowMissing: true, Indexer: jobStringIndex{"token", func(j *api.Job) string { return j.SubmitToken }}},
			// Status, then creation index: lists a status, and the
			// pending jobs created since an index.
			"status": {Name: "status", Indexer: jobStatusIndex{}},
			// Every pass reads the jobs holding nodes their preemptions
			// freed, however deep the queue.
			// Only holding jobs are in it (AllowMissing): every other
			// job write would otherwise re-insert the job under false.
			"held": {Name: "held", AllowMissing: true, Indexer: heldIndex},
			// Every pass reads the running services, however many
			// batch jobs run beside them.
			"service": {Name: "service", AllowMissing: true, Indexer: runningServiceIndex},
		}},
		tableAllocs: {Name: tableAllocs, Indexes: map[string]*memdb.IndexSchema{
			"id":   id("ID"),
			"job":  {Name: "job", Indexer: &memdb.StringFieldIndex{Field: "JobID"}},
			"node": {Name: "node", Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
		}},
		tableNodes: {Name: tableNodes, Indexes: map[string]*memdb.IndexSchema{
			"id":   id("ID"),
			"name": {Name: "name", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			// Node secrets are looked up on every agent request.
			"secret":   {Name: "secret", Unique: true, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "SecretDigest"}},
			"draining": {Name: "draining", AllowMissing: true, Indexer: drainingIndex},
		}},
		tableIndex: {Name: tableIndex, Indexes: map[string]*memdb.IndexSchema{
			"id": id("Key"),
		}},
		tableServers: {Name: tableServers, Indexes: map[string]*memdb.IndexSchema{
			"id": id("Name"),
		}},
	}}
	maps.Copy(db.Tables, aclSchema())
	maps.Copy(db.Tables, keysSchema())
	maps.Copy(db.Tables, modelsSchema())
	maps.Copy(db.Tables, versionsSchema())
	maps.Copy(db.Tables, jobCountsSchema())
	maps.Copy(db.Tables, reasonsSchema())
	return db
}

// Store is the indexed in-memory state. Reads go through Snapshot, an
// immutable view; writes happen only in the FSM.
type Store struct {
	mu      sync.RWMutex
	db      *memdb.MemDB
	abandon chan struct{} // closed when Restore replaces db
}

// NewStore returns an empty store.
func NewStore() *Store {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("state: invalid schema: %v", err)) // a programming error
	}
	return &Store{db: db, abandon: make(chan struct{})}
}

// Snapshot returns an immutable view of the state as of now.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &Snapshot{txn: s.db.Txn(false), abandon: s.abandon}
}

// replace swaps in a restored database and wakes every blocked query.
func (s *Store) replace(db *memdb.MemDB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db = db
	close(s.abandon)
	s.abandon = make(chan struct{})
}

func (s *Store) writeTxn() *memdb.Txn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Txn(true)
}

// QueryFunc runs a read against a snapshot, adding what it read to ws, and
// returns the index its answer reflects.
type QueryFunc func(ws memdb.WatchSet, snap *Snapshot) (uint64, error)

// Blocking runs query and, while its index is not above minIndex, waits for
// a change to what it read and runs it again, until ctx ends (a timeout is
// not an error: the last answer stands).
func (s *Store) Blocking(ctx context.Context, minIndex uint64, query QueryFunc) (uint64, error) {
	for {
		snap := s.Snapshot()
		ws := memdb.NewWatchSet()
		ws.Add(snap.abandon)
		idx, err := query(ws, snap)
		if err != nil || minIndex == 0 || idx > minIndex {
			return idx, err
		}
		if ws.WatchCtx(ctx) != nil {
			return idx, nil
		}
	}
}

// Snapshot is an immutable view of the state.
type Snapshot struct {
	txn     *memdb.Txn
	abandon chan struct{}
}

// Index returns the Raft index of the last write to table.
func (s *Snapshot) Index(table string) uint64 {
	raw, err := s.txn.First(tableIndex, "id", table)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*indexEntry).Value
}

// WatchAll adds to ws a channel that fires on any write to the state.
func (s *Snapshot) WatchAll(ws memdb.WatchSet) {
	it, err := s.txn.Get(tableIndex, "id")
	if err != nil {
		panic(err)
	}
	ws.Add(it.WatchCh())
}

// Table names, for Index.
const (
	TableJobs   = tableJobs
	TableAllocs = tableAllocs
	TableNodes  = tableNodes
	// TableJobVersions moves when a job's spec changes.
	TableJobVersions = tableJobVersions
)

// LatestIndex returns the highest index of any table.
func (s *Snapshot) LatestIndex() uint64 {
	var max uint64
	for _, t := range []string{tableJobs, tableAllocs, tableNodes} {
		if i := s.Index(t); i > max {
			max = i
		}
	}
	return max
}

// Job returns a job, or nil. Reads of jobs show a pending job's kept
// reason (kept_reasons.go).
func (s *Snapshot) Job(ws memdb.WatchSet, id string) *api.Job {
	j := first[*api.Job](ws, s.txn, tableJobs, "id", id)
	if j == nil {
		return nil
	}
	return withKeptReason(ws, s.txn, j)
}

// Jobs returns every job, oldest first.
func (s *Snapshot) Jobs(ws memdb.WatchSet) []*api.Job {
	return sortJobs(withKeptReasons(ws, s.txn, collect[*api.Job](ws, s.txn, tableJobs, "id")))
}

// JobsByStatus returns the jobs with one status, by priority then age.
func (s *Snapshot) JobsByStatus(ws memdb.WatchSet, status string) []*api.Job {
	jobs := withKeptReasons(ws, s.txn, collect[*api.Job](ws, s.txn, tableJobs, "status", status))
	sortByPriority(jobs)
	return jobs
}

// PendingJobsSince returns the pending jobs created after index, by
// priority then age, without scanning older jobs.
func (s *Snapshot) PendingJobsSince(index uint64) []*api.Job {
	it, err := s.txn.LowerBound(tableJobs, "status", api.JobPending, index+1)
	if err != nil {
		panic(err)
	}
	var jobs []*api.Job
	// The pending jobs are one run of the index; the next status ends it.
	for raw := it.Next(); raw != nil; raw = it.Next() {
		j := raw.(*api.Job)
		if j.Status != api.JobPending {
			break
		}
		jobs = append(jobs, j)
	}
	sortByPriority(jobs)
	return withKeptReasons(nil, s.txn, jobs)
}

// JobsHoldingNodes returns the jobs that hold nodes freed by their
// preemptions (pending ones; a placed job holds none), by priority then age.
func (s *Snapshot) JobsHoldingNodes() []*api.Job { return s.flaggedJobs("held") }

// RunningServices returns the running services (jobs with Service set),
// by priority then age.
func (s *Snapshot) RunningServices() []*api.Job { return s.flaggedJobs("service") }

// flaggedJobs lists the jobs a flag index (flag_index.go) holds, by
// priority then age.
func (s *Snapshot) flaggedJobs(index string) []*api.Job {
	jobs := withKeptReasons(nil, s.txn, collect[*api.Job](nil, s.txn, tableJobs, index, true))
	sortByPriority(jobs)
	return jobs
}

func sortByPriority(jobs []*api.Job) {
	sort.SliceStable(jobs, func(i, k int) bool {
		if jobs[i].Priority != jobs[k].Priority {
			return jobs[i].Priority > jobs[k].Priority
		}
		return jobs[i].CreateIndex < jobs[k].CreateIndex
	})
}

// Alloc returns an allocation, or nil.
func (s *Snapshot) Alloc(ws memdb.WatchSet, id string) *api.Allocation {
	return first[*api.Allocation](ws, s.txn, tableAllocs, "id", id)
}

// AllocsByJob returns a job's allocations by rank.
func (s *Snapshot) AllocsByJob(ws memdb.WatchSet, jobID string) []*api.Allocation {
	return sortAllocs(collect[*api.Allocation](ws, s.txn, tableAllocs, "job", jobID))
}

// AllocsByNode returns a node's allocations.
func (s *Snapshot) AllocsByNode(ws memdb.WatchSet, nodeID string) []*api.Allocation {
	return sortAllocs(collect[*api.Allocation](ws, s.txn, tableAllocs, "node", nodeID))
}

// Allocs returns every allocation.
func (s *Snapshot) Allocs(ws memdb.WatchSet) []*api.Allocation {
	return sortAllocs(collect[*api.Allocation](ws, s.txn, tableAllocs, "id"))
}

// Node returns a node by ID, or nil.
func (s *Snapshot) Node(ws memdb.WatchSet, id string) *api.Node {
	return first[*api.Node](ws, s.txn, tableNodes, "id", id)
}

// Server returns a server by name, or nil.
func (s *Snapshot) Server(name string) *api.Server {
	raw, err := s.txn.First(tableServers, "id", name)
	if err != nil {
		panic(err)
	}
	if raw == nil {
		return nil
	}
	return raw.(*api.Server)
}

// Servers returns every recorded server, by name.
func (s *Snapshot) Servers() []*api.Server {
	return collect[*api.Server](nil, s.txn, tableServers, "id")
}

// NodeByName returns a node by name, or nil.
func (s *Snapshot) NodeByName(ws memdb.WatchSet, name string) *api.Node {
	return first[*api.Node](ws, s.txn, tableNodes, "name", name)
}

// NodeBySecretDigest returns the node whose secret has this digest, or nil.
func (s *Snapshot) NodeBySecretDigest(digest string) *api.Node {
	if digest == "" {
		return nil
	}
	return first[*api.Node](nil, s.txn, tableNodes, "secret", digest)
}

// Nodes returns every node, by name.
func (s *Snapshot) Nodes(ws memdb.WatchSet) []*api.Node {
	// The name index holds them in name order already (its keys are the
	// names' bytes and a NUL, which sort as the names do): every pass
	// lists them, and sorting 10,000 names each time was 2.5% of a
	// 10,000-node leader's CPU.
	return collect[*api.Node](ws, s.txn, tableNodes, "name")
}

// DrainingNodes returns the nodes being drained, by name.
func (s *Snapshot) DrainingNodes() []*api.Node {
	nodes := collect[*api.Node](nil, s.txn, tableNodes, "draining", true)
	sort.Slice(nodes, func(i, k int) bool { return nodes[i].Name < nodes[k].Name })
	return nodes
}

// first returns the object an index finds, or the zero value, adding the
// index's watch channel to ws.
func first[T any](ws memdb.WatchSet, txn *memdb.Txn, table, index string, args ...any) T {
	ch, raw, err := txn.FirstWatch(table, index, args...)
	if err != nil {
		panic(fmt.Sprintf("state: query %s.%s: %v", table, index, err)) // schema bug
	}
	ws.Add(ch)
	var zero T
	if raw == nil {
		return zero
	}
	return raw.(T)
}

func collect[T any](ws memdb.WatchSet, txn *memdb.Txn, table, index string, args ...any) []T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		panic(fmt.Sprintf("state: query %s.%s: %v", table, index, err)) // schema bug
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return out
}

func sortJobs(jobs []*api.Job) []*api.Job {
	sort.Slice(jobs, func(i, k int) bool { return jobs[i].CreateIndex < jobs[k].CreateIndex })
	return jobs
}

func sortAllocs(allocs []*api.Allocation) []*api.Allocation {
	sort.Slice(allocs, func(i, k int) bool {
		if allocs[i].JobID != allocs[k].JobID {
			return allocs[i].JobID < allocs[k].JobID
		}
		if allocs[i].Rank != allocs[k].Rank {
			return allocs[i].Rank < allocs[k].Rank
		}
		return allocs[i].CreateIndex < allocs[k].CreateIndex
	})
	return allocs
}
