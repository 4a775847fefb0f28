package state

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// The model catalog: models and their versions, owned by a namespace.
// The FSM keeps plain-data checks only (names present, version numbers
// never reused, a version in use by an unfinished job is not removed);
// what a name may be and who may register it is the servers' business.

const tableModels = "models"

// TableModels is the table's name, for Index.
const TableModels = tableModels

// ModelRegisterRequest registers a model, a version of it, or both.
type ModelRegisterRequest struct {
	Model api.ModelRegisterRequest `json:"model"`
	Time  time.Time                `json:"time"`
}

// ModelDeleteRequest removes one version of a model (Version > 0) or the
// whole model.
type ModelDeleteRequest struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Version   int    `json:"version,omitempty"`
}

// ModelEvalRequest records evaluation results against versions. With
// JobID (an eval job's results, filed by the leader) a version removed
// since is passed over and the job is marked recorded; without, a missing
// version is an error.
type ModelEvalRequest struct {
	JobID string         `json:"jobId,omitempty"`
	Evals []VersionEvals `json:"evals"`
}

// VersionEvals are results for one version.
type VersionEvals struct {
	Namespace string           `json:"namespace"`
	Name      string           `json:"name"`
	Version   int              `json:"version"`
	Results   []api.EvalResult `json:"results"`
}

func modelsSchema() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableModels: {Name: tableModels, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "Namespace"}, &memdb.StringFieldIndex{Field: "Name"},
			}}},
		}},
	}
}

func getModel(txn *memdb.Txn, ns, name string) *api.Model {
	raw, _ := txn.First(tableModels, "id", ns, name)
	if raw == nil {
		return nil
	}
	return raw.(*api.Model)
}

// copyModel copies what an apply changes: the store's objects are shared
// with readers and never written in place.
func copyModel(m *api.Model) *api.Model {
	c := *m
	c.Versions = slices.Clone(m.Versions)
	return &c
}

func applyModelRegister(txn *memdb.Txn, index uint64, req *ModelRegisterRequest) (*api.ModelRegisterResponse, error) {
	r := req.Model
	if r.Name == "" || r.Namespace == "" {
		return nil, fmt.Errorf("register model: missing name or namespace")
	}
	old := getModel(txn, r.Namespace, r.Name)
	var m *api.Model
	if old == nil {
		m = &api.Model{Name: r.Name, Namespace: r.Namespace, CreateIndex: index}
	} else {
		m = copyModel(old)
		if r.Arch.Preset != "" && m.Arch.Preset != "" && r.Arch.Preset != m.Arch.Preset {
			return nil, fmt.Errorf("model %s is a %s; a %s checkpoint cannot be its version: %w", r.Name, m.Arch.Preset, r.Arch.Preset, ErrConflict)
		}
		// A job's result registered twice (a retried registration
		// after a failover) is the version it was the first time.
		if job := lineageJob(r.Lineage); job != "" {
			for _, v := range m.Versions {
				if lineageJob(v.Lineage) == job && v.URI == r.URI {
					return &api.ModelRegisterResponse{Name: m.Name, Namespace: m.Namespace, Version: v.Version}, nil
				}
			}
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&m.Description, r.Description)
	set(&m.Provider, r.Provider)
	set(&m.License, r.License)
	set(&m.Arch.Family, r.Arch.Family)
	set(&m.Arch.Preset, r.Arch.Preset)
	if r.Arch.Params > 0 {
		m.Arch.Params = r.Arch.Params
	}
	if r.Public != nil {
		m.Public = *r.Public
	}
	m.ModifyIndex = index
	resp := &api.ModelRegisterResponse{Name: m.Name, Namespace: m.Namespace}
	if r.URI != "" {
		m.LastVersion++
		v := api.ModelVersion{Version: m.LastVersion, URI: r.URI, Checksum: r.Checksum, Adapter: r.Adapter,
			Created: req.Time, CreateIndex: index}
		if r.Lineage != nil {
			l := *r.Lineage
			v.Lineage = &l
		}
		m.Versions = append(m.Versions, v)
		resp.Version = v.Version
		if err := recordJobOutput(txn, index, lineageJob(r.Lineage), r.Namespace, m.Name+"@"+strconv.Itoa(v.Version)); err != nil {
			return nil, err
		}
	}
	if err := txn.Insert(tableModels, m); err != nil {
		return nil, fmt.Errorf("insert model %s: %w", m.Name, err)
	}
	return resp, setIndex(txn, tableModels, index)
}

func lineageJob(l *api.Lineage) string {
	if l == nil {
		return ""
	}
	return l.Job
}

// recordJobOutput notes on the job that produced a version which version
// it became, so the servers register each result once.
func recordJobOutput(txn *memdb.Txn, index uint64, jobID, ns, ref string) error {
	if jobID == "" {
		return nil
	}
	raw, _ := txn.First(tableJobs, "id", jobID)
	if raw == nil || raw.(*api.Job).Namespace != ns {
		return nil
	}
	j := *raw.(*api.Job)
	j.Output = ref
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return fmt.Errorf("record output of job %s: %w", jobID, err)
	}
	return setIndex(txn, tableJobs, index)
}

func applyModelDelete(txn *memdb.Txn, index uint64, req *ModelDeleteRequest) (*api.ModelDeleteResponse, error) {
	m := getModel(txn, req.Namespace, req.Name)
	if m == nil {
		return nil, fmt.Errorf("model %s in namespace %s: %w", req.Name, req.Namespace, ErrNotFound)
	}
	var gone []api.ModelVersion
	var keep []api.ModelVersion
	for _, v := range m.Versions {
		if req.Version == 0 || v.Version == req.Version {
			gone = append(gone, v)
		} else {
			keep = append(keep, v)
		}
	}
	if req.Version > 0 && len(gone) == 0 {
		return nil, fmt.Errorf("model %s has no version %d: %w", req.Name, req.Version, ErrNotFound)
	}
	if users := jobsUsing(txn, req.Namespace, req.Name, gone); len(users) > 0 {
		return nil, fmt.Errorf("model %s is in use by unfinished job %s: cancel it or wait for it to end: %w", req.Name, users[0], ErrConflict)
	}
	resp := &api.ModelDeleteResponse{}
	for _, v := range gone {
		resp.Removed = append(resp.Removed, v.Version)
	}
	if req.Version == 0 {
		if err := txn.Delete(tableModels, m); err != nil {
			return nil, fmt.Errorf("delete model %s: %w", m.Name, err)
		}
	} else {
		c := copyModel(m)
		c.Versions, c.ModifyIndex = keep, index
		if err := txn.Insert(tableModels, c); err != nil {
			return nil, fmt.Errorf("update model %s: %w", m.Name, err)
		}
	}
	// A checkpoint another version still names keeps its data.
	named := map[string]bool{}
	it, err := txn.Get(tableModels, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		for _, v := range raw.(*api.Model).Versions {
			named[v.URI] = true
		}
	}
	for _, v := range gone {
		if named[v.URI] {
			resp.KeptShared = append(resp.KeptShared, v.URI)
		} else if !slices.Contains(resp.Unshared, v.URI) {
			resp.Unshared = append(resp.Unshared, v.URI)
		}
	}
	return resp, setIndex(txn, tableModels, index)
}

// jobsUsing lists the unfinished jobs whose spec resolved a reference to
// one of versions of ns/name.
func jobsUsing(txn *memdb.Txn, ns, name string, versions []api.ModelVersion) []string {
	var out []string
	for _, status := range []string{api.JobPending, api.JobRunning} {
		it, err := txn.Get(tableJobs, "status", status)
		if err != nil {
			continue
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			j := raw.(*api.Job)
			for _, ref := range j.Models {
				if ref.Namespace == ns && ref.Model == name && slices.ContainsFunc(versions, func(v api.ModelVersion) bool { return v.Version == ref.Version }) {
					out = append(out, j.ID)
					break
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func applyModelEval(txn *memdb.Txn, index uint64, req *ModelEvalRequest) error {
	for _, e := range req.Evals {
		err := recordEvals(txn, index, &e)
		if err != nil && (req.JobID == "" || !errors.Is(err, ErrNotFound)) {
			return err
		}
	}
	if req.JobID == "" {
		return nil
	}
	raw, _ := txn.First(tableJobs, "id", req.JobID)
	if raw == nil {
		return nil
	}
	j := *raw.(*api.Job)
	j.EvalsRecorded, j.ModifyIndex = true, index
	if err := txn.Insert(tableJobs, &j); err != nil {
		return fmt.Errorf("mark job %s's evaluations recorded: %w", req.JobID, err)
	}
	return setIndex(txn, tableJobs, index)
}

func recordEvals(txn *memdb.Txn, index uint64, req *VersionEvals) error {
	m := getModel(txn, req.Namespace, req.Name)
	if m == nil {
		return fmt.Errorf("model %s in namespace %s: %w", req.Name, req.Namespace, ErrNotFound)
	}
	c := copyModel(m)
	i := slices.IndexFunc(c.Versions, func(v api.ModelVersion) bool { return v.Version == req.Version })
	if i < 0 {
		return fmt.Errorf("model %s has no version %d: %w", req.Name, req.Version, ErrNotFound)
	}
	v := &c.Versions[i]
	v.Evals = slices.Clone(v.Evals)
	for _, r := range req.Results {
		// One result per dataset and job: a rerun of the same
		// evaluation replaces its figures.
		v.Evals = slices.DeleteFunc(v.Evals, func(e api.EvalResult) bool { return e.Dataset == r.Dataset && e.Job == r.Job })
		v.Evals = append(v.Evals, r)
	}
	c.ModifyIndex = index
	if err := txn.Insert(tableModels, c); err != nil {
		return fmt.Errorf("update model %s: %w", m.Name, err)
	}
	return setIndex(txn, tableModels, index)
}

// Model returns a namespace's model, or nil.
func (s *Snapshot) Model(ws memdb.WatchSet, ns, name string) *api.Model {
	return first[*api.Model](ws, s.txn, tableModels, "id", ns, name)
}

// Models returns every model, by namespace and name.
func (s *Snapshot) Models(ws memdb.WatchSet) []*api.Model {
	return collect[*api.Model](ws, s.txn, tableModels, "id")
}
