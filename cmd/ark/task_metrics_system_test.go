package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ark-sched/ark/internal/metricsdoc"
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// taskSeries scrapes every node's agent /metrics (the cluster at server)
// and returns the value of family's series of job, by node and by rank,
// where labels (besides job) match.
func taskSeries(t *testing.T, server, family, job string, labels map[string]string) map[string]float64 {
	t.Helper()
	c, _ := client.New(server)
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, n := range nodes {
		resp, err := http.Get("http://" + n.AgentAddr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fams, err := metricsdoc.Decode(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("agent %s's /metrics does not parse: %v", n.Name, err)
		}
	series:
		for _, m := range fams[family].GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if got["job"] != job || got["node"] != n.Name {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[n.Name+"/"+got["rank"]] = v
		}
	}
	return out
}

// rankNode is the node of job j's current allocation of rank.
func rankNode(j *api.Job, rank int) string {
	node, attempt := "", -1
	for _, a := range j.Allocations {
		if a.Rank == rank && a.Attempt > attempt {
			node, attempt = a.Node, a.Attempt
		}
	}
	return node
}
