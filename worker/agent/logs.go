package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

var allocIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)

func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/allocations/{id}/logs", a.handleLogs)
	return mux
}

// handleLogs serves a task's stdout or stderr; with follow=true it streams
// what the task writes until the task ends or the client goes away.
func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
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
		// At the end of what is written so far.
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
