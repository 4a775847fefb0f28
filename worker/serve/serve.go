package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/serve/rules"
	"github.com/ark-sched/ark/worker/train"
)

// Limits of one request.
const (
	MaxPromptBytes = 16 << 10
	MaxTokens      = 2048
)

// GenerateRequest is the body of POST /v1/generate, Ark's own endpoint that
// `ark infer` uses; new clients use the OpenAI API (openai.go).
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
	// Weights is how the base's weights are kept (Options.Weights).
	Weights string `json:"weights"`
	// The replica's load, which its agent passes on to the leader's
	// autoscaler: requests decoding, waiting for a batch slot, admitted
	// so far, and the time to the first token (p90 of the last 256).
	Running   int     `json:"running"`
	Waiting   int     `json:"waiting"`
	Requests  uint64  `json:"requests"`
	TTFTP90Ms float64 `json:"ttftP90Ms"`
	// DecodeSteps and DecodeTokens count the engine's decode steps and
	// the tokens they produced (first tokens, which prefills produce,
	// not included): their ratio is the mean batch, what continuous
	// batching achieved (ark bench serve reports it per row).
	DecodeSteps  uint64 `json:"decodeSteps"`
	DecodeTokens uint64 `json:"decodeTokens"`
	// Phases say where the engine's loop and its requests spent their
	// time (cumulative; engine_phases.go).
	Phases Phases `json:"phases"`
	// Metrics are the replica's figures, which its agent exports on its
	// /metrics (docs/metrics.md).
	Metrics *api.TaskMetrics `json:"metrics,omitempty"`
}

// Options configure a Server.
type Options struct {
	Model          string // the served model's name: what a request's `model` must say
	Ckpt           string // where it was loaded from
	Step           int64
	Replica        string
	MaxBatch       int           // default 32
	MaxQueue       int           // default 256
	RequestTimeout time.Duration // per request, queueing included; 0: none

	// Adapters are LoRA adapters served from the start, each fetched in
	// the background (requests for one wait until it is loaded).
	Adapters []AdapterSpec
	// AdapterSlots is the number of adapters active in compute memory at
	// once (default MaxBatch: then a request never waits for a slot, since
	// the running requests, at most MaxBatch-1 while one waits, hold at
	// most that many; with 8, 32 requests over 100 adapters queued for
	// slots and 1+N lost a third of its throughput); MaxLoRARank the
	// largest rank a slot holds (default 16, at most the model's width);
	// HostAdapters the unpinned adapters kept in host memory (default 64).
	AdapterSlots, MaxLoRARank, HostAdapters int
	// LoadAdapter reads an adapter checkpoint; default train.ReadAdapter
	// without keys.
	LoadAdapter AdapterLoader
	// AdminToken, when set, is the bearer token POST and DELETE
	// /v1/adapters and PUT /v1/rules require; unset, they are answered on
	// loopback only.
	AdminToken string
	// ModelRate > 0 bounds each served model's requests a second (the
	// base and each adapter apiece), ModelBurst deep (0: one second's
	// worth); see ratelimit.go.
	ModelRate  float64
	ModelBurst int
	// Weights is how the base model's weights are kept for decoding:
	// "float32" (or "", the default) or "bf16" (half the memory and the
	// bytes each decode step reads; kernels.BF16Packer).
	Weights string
	// Rules are the intervention rules applied from the start.
	Rules []spec.Rule
	// RuleLog, when set, is told each action a rule takes, with the
	// request's ID.
	RuleLog func(requestID string, d rules.Decision)
}

// The ways Options.Weights keeps the weights (a job's
// task.builtin.weights).
const (
	WeightsFloat32 = spec.WeightsFloat32
	WeightsBF16    = spec.WeightsBF16
)

// AdapterSpec names an adapter checkpoint to serve.
type AdapterSpec struct {
	Name   string `json:"name"`
	URI    string `json:"uri"`
	Pinned bool   `json:"pinned,omitempty"` // never evicted from host memory
}

// Server answers generation requests for one base model and its LoRA
// adapters through an Engine.
type Server struct {
	eng         *Engine
	reg         *registry
	stopFetches context.CancelFunc
	opt         Options
	health      Health
	created     int64 // for /v1/models
	rules       atomic.Pointer[rules.Set]
	limits      *modelLimits // nil: no per-model rate limit
	ruleActions counts       // the rules' actions, by action (engine_metrics.go)

	// specMu orders SetAdapters calls; specAdapters are the names the
	// spec (o.Adapters, then each SetAdapters) registered, which the next
	// SetAdapters may remove.
	specMu       sync.Mutex
	specAdapters map[string]bool
}

// New serves m and o.Adapters (fetched in the background); Run must be
// running for requests to be answered.
func New(m *train.Model, o Options) (*Server, error) {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 32
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 256
	}
	if o.AdapterSlots <= 0 {
		// A slot is small next to the base (rank x the layers' widths:
		// 0.5 MiB for gpt-small at rank 16), as in LoRAX and S-LoRA,
		// which keep many adapters active at once.
		o.AdapterSlots = o.MaxBatch
	}
	if o.MaxLoRARank <= 0 {
		o.MaxLoRARank = 16
	}
	o.MaxLoRARank = min(o.MaxLoRARank, m.Cfg.Width) // a higher rank would be a full-rank update
	if o.HostAdapters <= 0 {
		o.HostAdapters = 64
	}
	if o.LoadAdapter == nil {
		o.LoadAdapter = func(ctx context.Context, uri string) (*train.AdapterWeights, error) {
			return train.ReadAdapter(ctx, uri, nil)
		}
	}
	sum, err := m.ParamsSHA256()
	if err != nil {
		return nil, err
	}
	dec := m.NewDecoder()
	switch o.Weights {
	case "":
		o.Weights = WeightsFloat32
	case WeightsFloat32:
	case WeightsBF16:
		if err := dec.SetWeightsBF16(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("weights %q: want %s or %s", o.Weights, WeightsFloat32, WeightsBF16)
	}
	if err := dec.SetAdapterSlots(o.AdapterSlots, o.MaxLoRARank); err != nil {
		return nil, err
	}
	eng := NewEngine(dec, EngineConfig{MaxBatch: o.MaxBatch, MaxQueue: o.MaxQueue})
	ctx, cancel := context.WithCancel(context.Background())
	reg := newRegistry(ctx, o.Model, sum, m.Cfg, o.LoadAdapter, o.HostAdapters, eng.poke)
	eng.useAdapters(reg)
	s := &Server{
		eng: eng, reg: reg, stopFetches: cancel, opt: o,
		health:  Health{Model: o.Model, Step: o.Step, Ckpt: o.Ckpt, Replica: o.Replica, Weights: o.Weights},
		created: time.Now().Unix(),
		limits:  newModelLimits(o.ModelRate, o.ModelBurst),
	}
	if err := s.SetRules(o.Rules); err != nil {
		cancel()
		return nil, err
	}
	s.specAdapters = make(map[string]bool, len(o.Adapters))
	for i, a := range o.Adapters {
		if _, err := reg.add(a.Name, a.URI, a.Pinned); err != nil {
			cancel()
			return nil, fmt.Errorf("adapter %d: %w", i, err)
		}
		s.specAdapters[a.Name] = true
	}
	return s, nil
}

// Run runs the engine's scheduler until ctx ends, then stops the adapter
// fetches in flight.
func (s *Server) Run(ctx context.Context) error {
	defer func() {
		s.stopFetches()
		s.reg.close()
	}()
	return s.eng.Run(ctx)
}

// WaitAdapters waits until every registered adapter's fetch has ended and
// returns the first failure.
func (s *Server) WaitAdapters(ctx context.Context) error {
	for _, in := range s.reg.list() {
		if a, ok := s.reg.lookup(in.Name); ok {
			if err := s.reg.wait(ctx, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// Adapters describes the registered adapters.
func (s *Server) Adapters() []AdapterInfo { return s.reg.list() }

// Stats are the engine's counters.
func (s *Server) Stats() Stats { return s.eng.Stats() }

// Handler is the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		h := s.health
		st := s.eng.Stats()
		h.Running, h.Waiting, h.Requests, h.TTFTP90Ms = st.Running, st.Queued, st.Admitted+st.Rejected, st.TTFTP90Ms
		h.DecodeSteps, h.DecodeTokens = st.Steps, st.StepTokens
		h.Phases = s.eng.phases.snapshot()
		h.Metrics = s.Metrics()
		reply(w, http.StatusOK, h)
	})
	mux.HandleFunc("POST /v1/generate", s.handleGenerate)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { s.handleOpenAI(w, r, false) })
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { s.handleOpenAI(w, r, true) })
	mux.HandleFunc("GET /v1/adapters", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, map[string]any{"object": "list", "data": s.reg.list()})
	})
	mux.HandleFunc("POST /v1/adapters", s.handleAddAdapter)
	mux.HandleFunc("DELETE /v1/adapters/{name}", s.handleRemoveAdapter)
	mux.HandleFunc("GET /v1/rules", s.handleGetRules)
	mux.HandleFunc("PUT /v1/rules", s.handlePutRules)
	return mux
}

// handleGenerate is /v1/generate over the engine. As before the engine, a
// prompt longer than the context keeps its last tokens.
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
	// The same rules as the OpenAI routes: this route is no way around
	// them. A block answers with the rule's answer; a route has no
	// adapter to go to here.
	set, id := s.ruleSet(), newID(false)
	text, ds := set.Input(s.opt.Model, req.Prompt)
	s.logDecisions(id, ds)
	if n := len(ds); n > 0 && ds[n-1].Action == spec.RuleBlock {
		reply(w, http.StatusOK, GenerateResponse{Text: ds[n-1].Answer, Model: s.health.Model, Step: s.health.Step, Replica: s.opt.Replica})
		return
	}
	tok := s.eng.tok
	prompt := tok.Encode([]byte(text))
	if len(prompt) == 0 {
		prompt = tok.Encode([]byte("\n"))
	}
	if T := s.eng.Config().Context; len(prompt) > T {
		prompt = prompt[len(prompt)-T:]
	}
	ctx, cancel := withDeadline(r.Context(), s.opt.RequestTimeout)
	defer cancel()
	start := time.Now()
	res, err := s.complete(ctx, cancel, Request{Prompt: prompt, MaxTokens: req.Tokens, Temperature: req.Temperature, Seed: req.Seed}, set, id)
	took := time.Since(start)
	if err != nil {
		code, _ := errorStatus(err)
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfterOf(err))
		}
		reply(w, code, map[string]string{"error": err.Error()})
		return
	}
	reply(w, http.StatusOK, GenerateResponse{
		Text: res.text, Tokens: res.tokens, Millis: float64(took.Microseconds()) / 1000,
		Model: s.health.Model, Step: s.health.Step, Replica: s.opt.Replica,
		TokensSec: float64(res.tokens) / took.Seconds(),
	})
}

// result is a whole completion.
type result struct {
	text   string
	tokens int
	finish string
}

// submit queues req, its text passed through the output rules of set
// (cancel ends the request when one blocks it).
func (s *Server) submit(ctx context.Context, cancel context.CancelFunc, req Request, set *rules.Set, id string) (<-chan Event, error) {
	model := req.Adapter
	if model == "" {
		model = s.opt.Model
	}
	if err := s.limits.take(model, time.Now()); err != nil {
		return nil, err
	}
	events, err := s.eng.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.outputFilter(set, model, id, events, cancel), nil
}

// complete runs req to its end. A block by an output rule answers with
// the rule's answer alone: a whole answer is never part model, part rule.
func (s *Server) complete(ctx context.Context, cancel context.CancelFunc, req Request, set *rules.Set, id string) (result, error) {
	events, err := s.submit(ctx, cancel, req, set, id)
	if err != nil {
		return result{}, err
	}
	var res result
	for ev := range events {
		res.text += ev.Text
		res.tokens = ev.Tokens
		if ev.Done {
			res.finish = ev.Finish
			if ev.Blocked != "" {
				res.text = ev.Blocked
			}
			return res, ev.Err
		}
	}
	return res, ErrClosed
}

// retryAfter is the Retry-After of a 429, in seconds: a full queue drains
// in about a step per token, so a second is a fair first back-off.
const retryAfter = "1"

// errorStatus maps an engine error to an HTTP status and OpenAI error type.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limit_exceeded"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, context.Canceled):
		return 499, "cancelled" // the client is gone: nobody reads it
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "server_error"
	case errors.Is(err, ErrUnknownAdapter):
		return http.StatusNotFound, "model_not_found"
	case errors.Is(err, ErrAdapterUnavailable):
		return http.StatusServiceUnavailable, "adapter_unavailable"
	}
	return http.StatusInternalServerError, "server_error"
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
