package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// allowed stands for "past the access check": any answer but 401, 403 and
// a server error (operator routes whose outcome depends on the cluster).
const allowed = -1

// routeCase is how the table test calls one route, and what each kind of
// caller gets: none, tenant A (nlp), tenant B (vision), the agent token,
// node X's secret, node Y's secret, management.
type routeCase struct {
	path string // with {job}, {node} (X), {alloc} (on X)
	body string
	want [7]int
}

// TestRoutesUnderEveryToken enumerates the router's routes (as registered,
// not a copied list: a new route without a row here fails) and calls each
// with every kind of token.
func TestRoutesUnderEveryToken(t *testing.T) {
	s := nodeACLServer(t)
	x, y, job, alloc := twoNodes(t, s)
	kinds := []string{"none", "tenant A", "tenant B", "agent token", "node X", "node Y", "management"}
	tokens := []string{"", nlpTok, visionTok, agentTok, x.Secret, y.Secret, mgmtTok}
	nlpJob := `{"name":"more","namespace":"nlp","kind":"batch","resources":{"gpus":1},"task":{"driver":"exec","exec":{"command":["true"]}}}`
	mgmtOnly := [7]int{401, 403, 403, 403, 403, 403, allowed}
	table := map[string]routeCase{
		"POST /v1/jobs":                                  {"/v1/jobs", nlpJob, [7]int{401, 201, 403, 403, 403, 403, 201}},
		"GET /v1/jobs":                                   {"/v1/jobs", "", [7]int{401, 200, 200, 403, 403, 403, 200}},
		"POST /v1/jobs/validate":                         {"/v1/jobs/validate", nlpJob, [7]int{401, 200, 403, 403, 403, 403, 200}},
		"GET /v1/jobs/{id}":                              {"/v1/jobs/{job}", "", [7]int{401, 200, 404, 403, 403, 403, 200}},
		"GET /v1/jobs/{id}/logs":                         {"/v1/jobs/{job}/logs", "", [7]int{401, 502, 404, 403, 403, 403, 502}},
		"DELETE /v1/jobs/{id}":                           {"/v1/jobs/no-such-job", "", [7]int{401, 404, 404, 403, 403, 403, 404}},
		"PUT /v1/jobs/{id}":                              {"/v1/jobs/{job}", nlpJob, [7]int{401, 409, 404, 403, 403, 403, 409}},
		"POST /v1/jobs/{id}/promote":                     {"/v1/jobs/{job}/promote", "", [7]int{401, 409, 404, 403, 403, 403, 409}},
		"GET /v1/jobs/{id}/versions":                     {"/v1/jobs/{job}/versions", "", [7]int{401, 200, 404, 403, 403, 403, 200}},
		"/v1/services/{job}/{rest...}":                   {"/v1/services/{job}/v1/health", "", [7]int{401, 503, 404, 403, 403, 403, 503}},
		"POST /v1/jobs/{id}/adapters":                    {"/v1/jobs/{job}/adapters", `{"name":"a","uri":"file:///x"}`, [7]int{401, 409, 404, 403, 403, 403, 409}},
		"GET /v1/jobs/{id}/adapters":                     {"/v1/jobs/{job}/adapters", "", [7]int{401, 409, 404, 403, 403, 403, 409}},
		"DELETE /v1/jobs/{id}/adapters/{name}":           {"/v1/jobs/{job}/adapters/a", "", [7]int{401, 409, 404, 403, 403, 403, 409}},
		"POST /v1/nodes/register":                        {"/v1/nodes/register", `{"id":"{node}","name":"x","address":"127.0.0.1","cpuMilli":1000,"memoryBytes":1000}`, [7]int{401, 403, 403, 403, 200, 403, 200}},
		"GET /v1/nodes":                                  {"/v1/nodes", "", [7]int{401, 200, 200, 200, 200, 200, 200}},
		"GET /v1/nodes/{id}":                             {"/v1/nodes/{node}", "", [7]int{401, 200, 200, 200, 200, 200, 200}},
		"PUT /v1/nodes/{id}/heartbeat":                   {"/v1/nodes/{node}/heartbeat", "", [7]int{401, 403, 403, 403, 200, 403, 200}},
		"PUT /v1/nodes/{id}/drain":                       {"/v1/nodes/{node}/drain", `{"enable":false}`, [7]int{401, 403, 403, 403, 403, 403, 200}},
		"PUT /v1/nodes/{id}/eligibility":                 {"/v1/nodes/{node}/eligibility", `{"eligible":true}`, [7]int{401, 403, 403, 403, 403, 403, 200}},
		"GET /v1/nodes/{id}/allocations":                 {"/v1/nodes/{node}/allocations", "", [7]int{401, 403, 403, 403, 200, 403, 200}},
		"GET /v1/allocations/{id}":                       {"/v1/allocations/{alloc}", "", [7]int{401, 403, 403, 403, 200, 403, 200}},
		"PUT /v1/allocations/{id}/status":                {"/v1/allocations/{alloc}/status", `{"status":"running"}`, [7]int{401, 403, 403, 403, 200, 403, 200}},
		"GET /v1/status/leader":                          {"/v1/status/leader", "", [7]int{200, 200, 200, 200, 200, 200, 200}},
		"GET /v1/queues":                                 {"/v1/queues", "", [7]int{401, 200, 200, 200, 200, 200, 200}},
		"GET /metrics":                                   {"/metrics", "", [7]int{401, 200, 200, 200, 200, 200, 200}},
		"GET /ui/":                                       {"/ui/", "", [7]int{200, 200, 200, 200, 200, 200, 200}},
		"GET /ui/data/{page}":                            {"/ui/data/cluster", "", [7]int{401, 200, 200, 200, 200, 200, 200}},
		"GET /v1/operator/raft/self":                     {"/v1/operator/raft/self", "", [7]int{401, 403, 403, 403, 403, 403, 200}},
		"POST /v1/operator/raft/join":                    {"/v1/operator/raft/join", `{}`, [7]int{401, 403, 403, 403, 403, 403, allowed}},
		"GET /v1/operator/raft/peers":                    {"/v1/operator/raft/peers", "", [7]int{401, 403, 403, 403, 403, 403, 200}},
		"DELETE /v1/operator/raft/peers/{id}":            {"/v1/operator/raft/peers/no-such-peer", "", [7]int{401, 403, 403, 403, 403, 403, allowed}},
		"GET /v1/operator/snapshot":                      {"/v1/operator/snapshot", "", [7]int{401, 403, 403, 403, 403, 403, 200}},
		"PUT /v1/operator/snapshot":                      {"/v1/operator/snapshot", "not a snapshot", [7]int{401, 403, 403, 403, 403, 403, allowed}},
		"DELETE /v1/operator/namespace-keys/{namespace}": {"/v1/operator/namespace-keys/no-such-namespace", "", [7]int{401, 403, 403, 403, 403, 403, 404}},
		// The model catalog: tenants in their namespace; another's
		// private model is not found.
		"GET /v1/models":               {"/v1/models", "", [7]int{401, 200, 200, 403, 403, 403, 200}},
		"GET /v1/models/{name}":        {"/v1/models/no-such-model?namespace=nlp", "", [7]int{401, 404, 404, 403, 403, 403, 404}},
		"POST /v1/models":              {"/v1/models", `{"name":"m","namespace":"nlp"}`, [7]int{401, 200, 403, 403, 403, 403, 200}},
		"DELETE /v1/models/{name}":     {"/v1/models/no-such-model?namespace=nlp", "", [7]int{401, 404, 404, 403, 403, 403, 404}},
		"POST /v1/models/{name}/evals": {"/v1/models/no-such-model/evals", `{"namespace":"nlp","version":1,"results":[{"dataset":"d","loss":1}]}`, [7]int{401, 404, 404, 403, 403, 403, 404}},
		// The ACL routes: management only, but for a token's own record.
		"POST /v1/acl/bootstrap":          {"/v1/acl/bootstrap", "", mgmtOnly},
		"GET /v1/acl/policies":            {"/v1/acl/policies", "", mgmtOnly},
		"GET /v1/acl/policy/{name}":       {"/v1/acl/policy/no-such-policy", "", mgmtOnly},
		"PUT /v1/acl/policy/{name}":       {"/v1/acl/policy/no-such-policy", "{}", mgmtOnly},
		"DELETE /v1/acl/policy/{name}":    {"/v1/acl/policy/no-such-policy", "", mgmtOnly},
		"GET /v1/acl/tokens":              {"/v1/acl/tokens", "", mgmtOnly},
		"POST /v1/acl/tokens":             {"/v1/acl/tokens", "{}", mgmtOnly},
		"GET /v1/acl/token/self":          {"/v1/acl/token/self", "", [7]int{401, allowed, allowed, allowed, allowed, allowed, allowed}},
		"GET /v1/acl/token/{accessor}":    {"/v1/acl/token/no-such-token", "", mgmtOnly},
		"DELETE /v1/acl/token/{accessor}": {"/v1/acl/token/no-such-token", "", mgmtOnly},
		"/":                               {"/v1/no-such-route", "", [7]int{404, 404, 404, 404, 404, 404, 404}},
	}
	patterns := s.routes().(*routeMux).patterns
	for _, p := range patterns {
		if _, ok := table[p]; !ok {
			t.Errorf("route %q has no row in this test: say what each kind of token gets", p)
		}
	}
	for p := range table {
		if !slices.Contains(patterns, p) {
			t.Errorf("row %q is not a route of the router", p)
		}
	}
	subst := strings.NewReplacer("{job}", job, "{node}", x.ID, "{alloc}", alloc.ID)
	for _, p := range slices.Sorted(slices.Values(patterns)) {
		rc, ok := table[p]
		if !ok {
			continue
		}
		method := http.MethodGet
		if m, _, found := strings.Cut(p, " "); found {
			method = m
		}
		for k, tok := range tokens {
			var body *strings.Reader
			if rc.body != "" {
				body = strings.NewReader(subst.Replace(rc.body))
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequest(method, "http://"+s.HTTPAddr()+subst.Replace(rc.path), body)
			if err != nil {
				t.Fatal(err)
			}
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s as %s: %v", p, kinds[k], err)
			}
			var reg struct {
				Secret string `json:"secret"`
			}
			if p == "POST /v1/nodes/register" && resp.StatusCode == 200 {
				_ = json.NewDecoder(resp.Body).Decode(&reg)
			}
			resp.Body.Close()
			got, want := resp.StatusCode, rc.want[k]
			if want == allowed {
				if got == 401 || got == 403 || got >= 500 {
					t.Errorf("%s as %s: %d, want past the access check", p, kinds[k], got)
				}
			} else if got != want {
				t.Errorf("%s as %s: %d, want %d", p, kinds[k], got, want)
			}
			if reg.Secret != "" {
				// Management re-registering X replaced its secret.
				tokens[4] = reg.Secret
			}
		}
	}
}
