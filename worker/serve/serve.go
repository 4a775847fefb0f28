package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ark-sched/ark/worker/train"
)

// Limits of one request.
const (
	MaxPromptBytes = 16 << 10
	MaxTokens      = 2048
)

// GenerateRequest is the body of POST /v1/generate.
type GenerateRequest struct {
	Prompt      string  `json:"prompt"`
	Tokens      int     `json:"tokens,omitempty"`
	Temperature float64 `json:"temperature,omitempty"`
	Seed        uint64  `json:"seed,omitempty"`
}

// GenerateResponse answers it.
type GenerateResponse struct {
	Text      string  `json:"text"`
	Tokens    int     `json:"tokens"`
	Millis    float64 `json:"ms"`
	Model     string  `json:"model"`
	Step      int64   `json:"step"`
	Replica   string  `json:"replica,omitempty"`
	TokensSec float64 `json:"tokensPerSec"`
}

// Health answers GET /v1/health.
type Health struct {
	Model   string `json:"model"`
	Step    int64  `json:"step"`
	Ckpt    string `json:"checkpoint"`
	Replica string `json:"replica,omitempty"`
}

// Server answers generation requests with one model. The kernels device is
// not safe for concurrent callers, so requests take turns.
type Server struct {
	mu      sync.Mutex
	model   *train.Model
	health  Health
	replica string
}

// New serves m, loaded from checkpoint ckpt at step.
func New(m *train.Model, modelName, ckpt string, step int64, replica string) *Server {
	return &Server{model: m, replica: replica, health: Health{Model: modelName, Step: step, Ckpt: ckpt, Replica: replica}}
}

// Handler is the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, s.health) })
	mux.HandleFunc("POST /v1/generate", s.handleGenerate)
	return mux
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	var req GenerateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxPromptBytes+4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		code := http.StatusBadRequest
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
		reply(w, code, map[string]string{"error": "invalid request: " + err.Error()})
		return
	}
	if req.Tokens == 0 {
		req.Tokens = 128
	}
	switch {
	case len(req.Prompt) > MaxPromptBytes:
		reply(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("prompt: at most %d bytes", MaxPromptBytes)})
		return
	case req.Tokens < 0 || req.Tokens > MaxTokens:
		reply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("tokens: must be 1..%d, got %d", MaxTokens, req.Tokens)})
		return
	case req.Temperature < 0 || req.Temperature > 10:
		reply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("temperature: must be 0..10, got %g", req.Temperature)})
		return
	}
	if req.Seed == 0 {
		req.Seed = 1
	}
	s.mu.Lock()
	start := time.Now()
	text, err := s.model.Generate([]byte(req.Prompt), req.Tokens, req.Temperature, req.Seed)
	took := time.Since(start)
	s.mu.Unlock()
	if err != nil {
		reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, GenerateResponse{
		Text: string(text), Tokens: len(text), Millis: float64(took.Microseconds()) / 1000,
		Model: s.health.Model, Step: s.health.Step, Replica: s.replica,
		TokensSec: float64(len(text)) / took.Seconds(),
	})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
