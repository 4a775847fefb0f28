package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
)

// The per-namespace token bucket in front of services (Limits.ServiceRate):
// every call to /v1/services/{job}/... takes one request from the bucket
// of the job's namespace at this server, whoever makes it, before a
// replica is picked. Past it the caller gets 429 with Retry-After, in
// OpenAI's error shape as the replicas' own limits (worker/serve), so an
// OpenAI client backs off the same way. The per-model buckets of a builtin
// replica (task.builtin.rateLimit) still apply behind it. With N servers
// a namespace may get N times the rate, as a client spreads its calls.
// Off by default (as the per-model buckets): then service calls count
// against the token's own bucket (Limits.TenantRate) as any other call.

// isServiceCall reports whether r is a call to a service's endpoint,
// charged to its namespace's bucket rather than the token's.
func isServiceCall(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/v1/services/")
}

// serviceAllowed takes one request from j's namespace's bucket, or
// answers 429 and reports false.
func (s *Server) serviceAllowed(w http.ResponseWriter, j *api.Job) bool {
	ok, retry := s.svcRate.allow("service\x00" + j.Namespace)
	if ok {
		return true
	}
	secs := max(int(math.Ceil(retry.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	code := "rate_limit_exceeded"
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": fmt.Sprintf("namespace %q is past its rate limit for services at this server (%g/s, burst %g; ark server --service-rate): retry in %ds",
			j.Namespace, s.svcRate.rate, s.svcRate.burst, secs),
		"type":  code,
		"param": nil,
		"code":  code,
	}})
	return false
}
