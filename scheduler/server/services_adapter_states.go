package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// GET /v1/jobs/{id}/adapters[?name=N]: what each serving replica of a
// builtin service says of its adapters, so that ark job adapter add can
// wait for the replicas' verdict on a new one (loaded, or failed with
// why) instead of answering before any replica has opened it.
//
// The server asks each ready replica's GET /v1/adapters, as the service
// endpoint forwards requests: the same servers-to-replicas path, a read
// that changes nothing (a replica answers it to anyone), so no cluster
// key and no new privilege is needed. The caller needs to see the job:
// read on its namespace, or update (who may add an adapter may see
// whether it loaded). It is a control call, charged to the token's own
// rate (Limits.TenantRate) like any other, not to the namespace's service
// bucket: a wait must not take the budget of the service's own traffic.
// The states are asked at the time of the request
// rather than carried in heartbeats: a wait polls it for seconds, and a
// stale answer would be read as a verdict. A replica not ready yet, or
// one that does not answer, is listed with why: its adapters are
// unknown, not absent.

// replicaAdaptersTime bounds one replica's answer.
const replicaAdaptersTime = 5 * time.Second

// maxReplicaAdapters bounds a replica's GET /v1/adapters answer read.
const maxReplicaAdapters = 4 << 20

func (s *Server) handleServiceAdapterStates(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	snap := s.store.Snapshot()
	j := snap.Job(nil, id)
	p := principalOf(r.Context())
	if err := p.jobAccess(j, id, api.CapRead); err != nil {
		if p.jobAccess(j, id, api.CapUpdate) != nil {
			s.fail(w, r, err)
			return
		}
	}
	if !j.Service || j.Spec.Task.Builtin == nil {
		s.fail(w, r, &httpError{http.StatusConflict, fmt.Errorf("job %s is not a builtin inference service: only those serve adapters", id)})
		return
	}
	name := r.URL.Query().Get("name")
	if name != "" && !spec.ValidAdapterName(name) {
		s.fail(w, r, spec.Errors{{Path: "name", Msg: fmt.Sprintf("not an adapter name: %q", name)}})
		return
	}
	out := api.ServiceAdapterStates{Job: j.ID, Version: j.Version, Replicas: []api.ReplicaAdapters{}}
	var addrs []string
	for _, a := range snap.AllocsByJob(nil, j.ID) {
		if !a.Serving() {
			continue
		}
		ra := api.ReplicaAdapters{Alloc: a.ID, Rank: a.Rank, JobVersion: a.JobVersion, Adapters: []api.ReplicaAdapter{}}
		n := snap.Node(nil, a.NodeID)
		if n != nil {
			ra.Node = n.Name
		}
		addr := ""
		switch {
		case !a.Ready || a.Port == 0:
			ra.Error = "not ready yet (starting, or failing its health check)"
		case n == nil || n.Status != api.NodeReady:
			ra.Error = "its node is not ready"
		default:
			addr = net.JoinHostPort(n.Address, strconv.Itoa(a.Port))
		}
		out.Replicas = append(out.Replicas, ra)
		addrs = append(addrs, addr)
	}
	var wg sync.WaitGroup
	for i, addr := range addrs {
		if addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra := &out.Replicas[i]
			list, err := s.replicaAdapters(r.Context(), addr)
			if err != nil {
				ra.Error = fmt.Sprintf("did not answer GET /v1/adapters: %v", err)
				return
			}
			for _, ad := range list {
				if name == "" || ad.Name == name {
					ra.Adapters = append(ra.Adapters, ad)
				}
			}
		}()
	}
	wg.Wait()
	// A replica that answered without the named adapter of the spec has
	// not been told of it yet: pending, not absent.
	if i := slices.IndexFunc(j.Spec.Task.Builtin.Adapters, func(a spec.Adapter) bool { return a.Name == name }); name != "" && i >= 0 {
		for k := range out.Replicas {
			if ra := &out.Replicas[k]; ra.Error == "" && len(ra.Adapters) == 0 {
				ra.Adapters = append(ra.Adapters, api.ReplicaAdapter{Name: name, URI: j.Spec.Task.Builtin.Adapters[i].URI, Tier: api.AdapterPending})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// replicaAdapters asks the builtin replica at addr for its adapters.
func (s *Server) replicaAdapters(ctx context.Context, addr string) ([]api.ReplicaAdapter, error) {
	ctx, cancel := context.WithTimeout(ctx, replicaAdaptersTime)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/adapters", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.svc.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	var body struct {
		Data []api.ReplicaAdapter `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplicaAdapters)).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode its answer: %w", err)
	}
	return body.Data, nil
}
