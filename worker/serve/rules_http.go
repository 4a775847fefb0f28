package serve

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/serve/rules"
)

// Intervention rules (worker/serve/rules): input rules change, block or
// route a request before it is queued; output rules mask or block the
// generated text before it leaves the server, streamed or not. The set is
// swapped whole (PUT /v1/rules) without a restart; a request keeps the
// set it started with.

// finishFiltered is OpenAI's finish reason for an answer a filter changed.
const finishFiltered = "content_filter"

// ruleSet is the current set (never nil).
func (s *Server) ruleSet() *rules.Set { return s.rules.Load() }

// SetRules replaces the rules; an invalid list changes nothing.
func (s *Server) SetRules(rs []spec.Rule) error {
	set, err := rules.Compile(rs)
	if err != nil {
		return err
	}
	s.rules.Store(set)
	return nil
}

// logDecisions records the actions taken on a request: rule, version and
// action with the request's ID, never the text.
func (s *Server) logDecisions(id string, ds []rules.Decision) {
	for _, d := range ds {
		s.ruleActions.add(d.Action)
	}
	if s.opt.RuleLog == nil {
		return
	}
	for _, d := range ds {
		s.opt.RuleLog(id, d)
	}
}

// rulesDoc is what GET /v1/rules answers.
type rulesDoc struct {
	Rules []spec.Rule      `json:"rules"`
	Hits  map[string]int64 `json:"hits"`
}

func (s *Server) handleGetRules(w http.ResponseWriter, _ *http.Request) {
	set := s.ruleSet()
	reply(w, http.StatusOK, rulesDoc{Rules: set.Rules(), Hits: set.Hits()})
}

// handlePutRules replaces the rules with the body's ({"rules": [...]}),
// with the adapters' management rules.
func (s *Server) handlePutRules(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	var body struct {
		Rules []spec.Rule `json:"rules"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, badRequest("rules", "invalid_json", "could not parse the rules: %v", err))
		return
	}
	if err := s.SetRules(body.Rules); err != nil {
		writeError(w, badRequest("rules", "invalid_rules", "%v", err))
		return
	}
	s.handleGetRules(w, r)
}

// outputFilter runs a request's events through the output rules: text is
// released as the rules allow, and a block ends the request (its context
// is cancelled, the engine frees its slot) with the rule's answer.
func (s *Server) outputFilter(set *rules.Set, model, id string, events <-chan Event, cancel context.CancelFunc) <-chan Event {
	f := set.Output(model)
	if f == nil {
		return events
	}
	// The reader (complete, stream) reads to the last event whatever
	// happens to its client, so plain sends cannot block for ever; the
	// cancel a block makes must not lose the last event.
	out := make(chan Event, 1)
	go func() {
		defer close(out)
		send := func(ev Event) { out <- ev }
		for ev := range events {
			text, d := f.Write(ev.Text)
			if !ev.Done && d == nil {
				if text != "" {
					send(Event{Text: text, Tokens: ev.Tokens})
				}
				continue
			}
			if d == nil && ev.Err == nil {
				var rest string
				rest, d = f.Close()
				text += rest
			}
			s.logDecisions(id, f.Decisions())
			if d != nil {
				cancel()
				send(Event{Text: text, Tokens: ev.Tokens, Done: true, Finish: finishFiltered, Blocked: d.Answer})
				// The engine ends the cancelled request with a last
				// event (its channel is buffered and never closed).
				for !ev.Done {
					ev = <-events
				}
				return
			}
			ev.Text = text
			send(ev)
			return
		}
	}()
	return out
}
