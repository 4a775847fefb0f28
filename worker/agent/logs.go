package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

var allocIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/allocations/{id}/logs", a.handleLogs)
	mux.HandleFunc("POST /v1/allocations/{id}/report", a.handleReport)
	mux.HandleFunc("GET /v1/allocations/{id}/rules", a.handleRules)
	mux.Handle("GET /metrics", a.metricsHandler())
	return mux
}

// handleLogs serves a task's stdout or stderr; with follow=true it streams
// what the task writes until the task ends or the client goes away.
func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
	if !a.logsAllowed(r) {
		httpError(w, http.StatusUnauthorized, errors.New("logs need this node's logs key (the servers present it; ask them: ark job logs)"))
		return
	}
	id := r.PathValue("id")
	if !allocIDRE.MatchString(id) {
		httpError(w, http.StatusBadRequest, fmt.Errorf("invalid allocation ID %q", id))
		return
	}
	stream := r.URL.Query().Get("stream")
	if stream == "" {
		stream = "stdout"
	}
	if stream != "stdout" && stream != "stderr" {
		httpError(w, http.StatusBadRequest, fmt.Errorf("stream must be stdout or stderr, got %q", stream))
		return
	}
	follow := r.URL.Query().Get("follow") == "true"
	dir := filepath.Join(a.cfg.DataDir, "allocs", id)
	f, err := os.Open(logPath(dir, stream))
	if errors.Is(err, os.ErrNotExist) {
		httpError(w, http.StatusNotFound, fmt.Errorf("allocation %s has no %s log on node %s (not started yet?)", id, stream, a.cfg.Name))
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	defer f.Close()
	a.mu.Lock()
	t := a.tasks[id]
	a.mu.Unlock()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		// At the end of what is written so far. A rotated log continues
		// in a new file under the same name.
		if follow {
			if cur, err := os.Stat(logPath(dir, stream)); err == nil {
				if fi, err := f.Stat(); err == nil && !os.SameFile(cur, fi) {
					nf, err := os.Open(logPath(dir, stream))
					if err == nil {
						f.Close()
						f = nf
						continue
					}
				}
			}
		}
		if !follow || t == nil || t.finished() {
			if follow && t != nil {
				// One more read: the task may have written just before it ended.
				if n, _ := f.Read(buf); n > 0 {
					_, _ = w.Write(buf[:n])
					continue
				}
			}
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// handleReport takes a running task's progress and last checkpoint and
// passes them to the servers (so that preemption can choose the victims
// that lose the least work); its metrics it keeps for /metrics.
func (a *Agent) handleReport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !checkBearer(r, a.taskToken(id)) {
		httpError(w, http.StatusUnauthorized, fmt.Errorf("a report for allocation %s needs its task token (ARK_TASK_TOKEN, as Authorization: Bearer)", id))
		return
	}
	var rep api.TaskReport
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("invalid report: %w", err))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpError(w, http.StatusBadRequest, errors.New("invalid report: trailing data after the object"))
		return
	}
	if rep.Progress == "" && rep.Checkpoint == nil && len(rep.Evals) == 0 && rep.Metrics == nil {
		httpError(w, http.StatusBadRequest, errors.New("a report needs progress, a checkpoint, evals or metrics"))
		return
	}
	if rep.Metrics != nil {
		if err := rep.Metrics.Check(); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("invalid report: %w", err))
			return
		}
	}
	if err := api.CheckEvals(rep.Evals); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("invalid report: %w", err))
		return
	}
	// The servers' rule (scheduler/server handleAllocStatus): refused here,
	// a bad checkpoint is the task's 400, not a 502 from passing it on.
	if cp := rep.Checkpoint; cp != nil && (cp.URI == "" || len(cp.URI) > 2048 || cp.Step < 0) {
		httpError(w, http.StatusBadRequest, fmt.Errorf("invalid report: checkpoint needs a uri (at most 2048 characters) and a step >= 0, got %d characters and step %d", len(cp.URI), cp.Step))
		return
	}
	if rep.Checkpoint != nil && rep.Checkpoint.Time.IsZero() {
		rep.Checkpoint.Time = time.Now().UTC()
	}
	a.mu.Lock()
	t := a.tasks[id]
	a.mu.Unlock()
	if t == nil || t.finished() {
		httpError(w, http.StatusNotFound, fmt.Errorf("allocation %s is not running on node %s", id, a.cfg.Name))
		return
	}
	if rep.Metrics != nil {
		a.putMetrics(id, rep.Metrics)
		if rep.Progress == "" && rep.Checkpoint == nil && len(rep.Evals) == 0 {
			w.WriteHeader(http.StatusNoContent) // figures stay on the node
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	err := a.client.UpdateAllocStatus(ctx, id, api.AllocStatusUpdate{Status: api.AllocRunning, Progress: rep.Progress, Checkpoint: rep.Checkpoint, Evals: rep.Evals})
	if err != nil {
		httpError(w, http.StatusBadGateway, fmt.Errorf("pass the report to the servers: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
