// Package rules applies an inference job's intervention rules (spec.Rule)
// to requests: input rules to the prompt before it is queued, output rules
// to the generated text as it streams. An output filter holds back the
// last Window bytes of text, so a blocked or masked phrase that arrives
// split over several tokens never reaches the client. Each action taken is
// counted per rule.
package rules

import (
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ark-sched/ark/scheduler/spec"
)

// Window is how much generated text an output filter holds back at most:
// a keyword up to this long, or a regex match this long, is caught whole
// however the tokens split it. Longer regex matches may be seen in part.
// A regex whose longest match is shorter (no unbounded repeat) holds back
// only that less one byte (maxMatchBytes), as a keyword does.
const Window = 256

// Set is a compiled list of rules, safe for concurrent use.
type Set struct {
	rules  []*rule
	window int // bytes held back: the longest output keyword less one, else Window
}

type rule struct {
	spec.Rule
	re *regexp.Regexp // a regex rule, or a keyword rule with a non-ASCII keyword
	// kws are an ASCII keyword rule's keywords, lowercased: matched by
	// substring search on lowercased text, far cheaper than a regexp.
	kws  []string
	hits atomic.Int64
}

// find is the leftmost match of r in s (lower is s with ASCII letters
// lowercased, the same length), or nil.
func (r *rule) find(s, lower string) []int {
	if r.re != nil {
		return r.re.FindStringIndex(s)
	}
	var best []int
	for _, k := range r.kws {
		if i := strings.Index(lower, k); i >= 0 && (best == nil || i < best[0] || (i == best[0] && i+len(k) > best[1])) {
			best = []int{i, i + len(k)}
		}
	}
	return best
}

// replaceAll replaces every match of r in s with mask.
func (r *rule) replaceAll(s, mask string) string {
	var out strings.Builder
	for {
		m := r.find(s, lowerASCII(s))
		if m == nil || m[0] == m[1] {
			out.WriteString(s)
			return out.String()
		}
		out.WriteString(s[:m[0]])
		out.WriteString(mask)
		s = s[m[1]:]
	}
}

// lowerASCII lowercases ASCII letters only, so byte offsets stay valid.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Compile validates rules (errors name the rule and field) and compiles
// them. A nil or empty list gives a Set that changes nothing.
func Compile(rs []spec.Rule) (*Set, error) {
	if es := spec.ValidateRules("rules", rs); len(es) > 0 {
		return nil, es
	}
	s := &Set{}
	for _, r := range rs {
		c := &rule{Rule: r}
		ascii := true
		for _, k := range r.Keywords {
			ascii = ascii && isASCII(k)
		}
		switch {
		case r.Regex != "":
			c.re = regexp.MustCompile(r.Regex)
		case ascii:
			for _, k := range r.Keywords {
				c.kws = append(c.kws, lowerASCII(k))
			}
		default:
			// Keywords match case-insensitively, as literal text.
			alts := make([]string, len(r.Keywords))
			for i, k := range r.Keywords {
				alts[i] = regexp.QuoteMeta(k)
			}
			c.re = regexp.MustCompile("(?i)" + strings.Join(alts, "|"))
		}
		if r.On == spec.RuleOutput {
			w := Window
			if n, ok := maxMatchBytes(r.Regex); r.Regex != "" && ok && n-1 < Window {
				// A match's start still incomplete is at most one byte
				// shorter than its longest match.
				w = max(n-1, 0)
			}
			if r.Regex == "" {
				w = 0
				// A keyword's start still incomplete is at most
				// one byte shorter than it.
				for _, k := range r.Keywords {
					w = max(w, len(k)-1)
				}
			}
			s.window = max(s.window, w)
		}
		s.rules = append(s.rules, c)
	}
	return s, nil
}

// Rules are the rules as given.
func (s *Set) Rules() []spec.Rule {
	out := make([]spec.Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = r.Rule
	}
	return out
}

// Hits is how many times each rule acted, by rule ID.
func (s *Set) Hits() map[string]int64 {
	out := map[string]int64{}
	for _, r := range s.rules {
		out[r.ID] = r.hits.Load()
	}
	return out
}

// Decision is what a rule did to a request.
type Decision struct {
	Rule    string // its ID
	Version int
	Action  string // block, mask or route
	Answer  string // block: the canned answer
	Route   string // route: the adapter
}

func (r *rule) applies(model string) bool {
	return len(r.Models) == 0 || slices.Contains(r.Models, model)
}

func (r *rule) decision() *Decision {
	r.hits.Add(1)
	return &Decision{Rule: r.ID, Version: r.Version, Action: r.Action, Answer: r.Answer, Route: r.Route}
}

// Input applies the input rules, in order, to a request for model: the
// prompt comes back masked, and the first block or route ends the
// rules (a routed request is not matched again for its new model).
func (s *Set) Input(model, prompt string) (string, []Decision) {
	if s == nil {
		return prompt, nil
	}
	var ds []Decision
	lower := lowerASCII(prompt)
	for _, r := range s.rules {
		if r.On != spec.RuleInput || !r.applies(model) || r.find(prompt, lower) == nil {
			continue
		}
		d := r.decision()
		ds = append(ds, *d)
		switch r.Action {
		case spec.RuleMask:
			prompt = r.replaceAll(prompt, maskOf(r))
			lower = lowerASCII(prompt)
		default:
			return prompt, ds
		}
	}
	return prompt, ds
}

func maskOf(r *rule) string {
	if r.Mask != "" {
		return r.Mask
	}
	return "[removed]"
}

// Output returns a filter for one request's generated text, or nil when
// no output rule applies to model.
func (s *Set) Output(model string) *Filter {
	if s == nil {
		return nil
	}
	var rs []*rule
	for _, r := range s.rules {
		if r.On == spec.RuleOutput && r.applies(model) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return &Filter{rules: rs, window: s.window}
}

// Filter applies output rules to one stream of text.
type Filter struct {
	rules   []*rule
	window  int
	pending string // text not yet released
	acted   []Decision
}

// Decisions are the actions the filter took so far.
func (f *Filter) Decisions() []Decision { return f.acted }

// Write takes the next generated text and returns what may be released
// now. A block returns its decision: the request must stop, and nothing
// more of its text is released.
func (f *Filter) Write(text string) (string, *Decision) {
	f.pending += text
	return f.release(false)
}

// Close releases the rest at the end of generation (matching it whole).
func (f *Filter) Close() (string, *Decision) { return f.release(true) }

func (f *Filter) release(final bool) (string, *Decision) {
	var out strings.Builder
	// first is the start of the earliest match not yet acted on, one
	// that may still grow: text from there is held back.
	var first int
	for {
		// The earliest match that is complete: one ending before the
		// held-back window (or anywhere, at the end) cannot grow.
		var best *rule
		var loc []int
		limit := len(f.pending) - f.window
		if final {
			limit = len(f.pending)
		}
		lower := lowerASCII(f.pending)
		first = len(f.pending)
		for _, r := range f.rules {
			m := r.find(f.pending, lower)
			if m == nil || m[0] == m[1] {
				continue
			}
			if m[1] > limit {
				first = min(first, m[0])
				continue
			}
			if loc == nil || m[0] < loc[0] {
				best, loc = r, m
			}
		}
		if best == nil {
			break
		}
		d := best.decision()
		f.acted = append(f.acted, *d)
		if best.Action == spec.RuleBlock {
			out.WriteString(f.pending[:loc[0]])
			f.pending = ""
			return out.String(), d
		}
		out.WriteString(f.pending[:loc[0]])
		out.WriteString(maskOf(best))
		f.pending = f.pending[loc[1]:]
	}
	cut := len(f.pending)
	if !final {
		// Never release the start of a match still growing.
		cut = min(max(0, len(f.pending)-f.window), first)
		for cut > 0 && cut < len(f.pending) && !utf8Start(f.pending[cut]) {
			cut--
		}
	}
	out.WriteString(f.pending[:cut])
	f.pending = f.pending[cut:]
	return out.String(), nil
}

// utf8Start reports whether b begins a UTF-8 sequence.
func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
