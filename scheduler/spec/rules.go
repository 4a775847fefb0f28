package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Rule is an intervention rule of an inference job: it matches the prompt
// (stage: input) or the generated text (stage: output) by keywords (any of them,
// case-insensitive) or a regular expression, optionally only for some of
// the served models, and acts: block answers with a canned answer, mask
// replaces the matched text, route sends the request to another adapter
// (input rules only). The builtin server applies them (worker/serve/rules).
type Rule struct {
	ID      string `json:"id"`
	Version int    `json:"version,omitempty"`
	// On is input or output. (Its YAML key is stage: YAML 1.1 reads a
	// key "on" as the boolean true.)
	On string `json:"stage"`
	// Models limits the rule to requests for these models (the base's
	// name or adapters'); empty: every model.
	Models   []string `json:"models,omitempty"`
	Keywords []string `json:"keywords,omitempty"`
	Regex    string   `json:"regex,omitempty"`
	// Action is block, mask or route.
	Action string `json:"action"`
	// Answer is what a blocked request gets instead.
	Answer string `json:"answer,omitempty"`
	// Mask replaces the matched text (default "[removed]").
	Mask string `json:"mask,omitempty"`
	// Route is the adapter a routed request goes to.
	Route string `json:"route,omitempty"`
}

// Rule actions and sides.
const (
	RuleInput  = "input"
	RuleOutput = "output"
	RuleBlock  = "block"
	RuleMask   = "mask"
	RuleRoute  = "route"
)

// MaxRules bounds a job's rules; MaxRuleRegex a rule's expression.
const (
	MaxRules     = 1000
	MaxRuleRegex = 4096
)

var ruleIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateRules reports every problem of a rule list, each with its path
// under prefix ("task.builtin.rules"): what the servers check at
// submission and the builtin server when rules are replaced.
func ValidateRules(prefix string, rules []Rule) Errors {
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if len(rules) > MaxRules {
		add(prefix, "at most %d rules, got %d", MaxRules, len(rules))
	}
	ids := map[string]bool{}
	for i, r := range rules {
		at := prefix + "[" + strconv.Itoa(i) + "]"
		switch {
		case !ruleIDRE.MatchString(r.ID):
			add(at+".id", "must be 1-64 letters, digits, '.', '_' or '-', got %q", r.ID)
		case ids[r.ID]:
			add(at+".id", "%q is given twice", r.ID)
		}
		ids[r.ID] = true
		if r.Version < 0 {
			add(at+".version", "must be >= 0, got %d", r.Version)
		}
		if r.On != RuleInput && r.On != RuleOutput {
			add(at+".stage", "must be input or output, got %q", r.On)
		}
		switch {
		case len(r.Keywords) == 0 && r.Regex == "":
			add(at, "needs keywords or a regex to match")
		case len(r.Keywords) > 0 && r.Regex != "":
			add(at, "has both keywords and a regex: use one (a regex can list alternatives)")
		}
		for k, kw := range r.Keywords {
			if strings.TrimSpace(kw) == "" || len(kw) > 256 || !utf8.ValidString(kw) {
				add(fmt.Sprintf("%s.keywords[%d]", at, k), "must be 1-256 bytes of UTF-8 text, not blank")
			}
		}
		if r.Regex != "" {
			if len(r.Regex) > MaxRuleRegex {
				add(at+".regex", "is longer than %d characters", MaxRuleRegex)
			} else if re, err := regexp.Compile(r.Regex); err != nil {
				add(at+".regex", "%v", err)
			} else if re.MatchString("") {
				// It would match nothing at every position and hide its
				// real matches behind the empty one.
				add(at+".regex", "matches empty text (%q): a rule must match some text", r.Regex)
			}
		}
		switch r.Action {
		case RuleBlock:
			if r.Answer == "" {
				add(at+".answer", "is required with action block (what the request gets instead)")
			}
		case RuleMask:
		case RuleRoute:
			if r.On != RuleInput {
				add(at+".action", "route acts on the prompt: it needs stage: input")
			}
			if !ValidAdapterName(r.Route) {
				add(at+".route", "must name an adapter, got %q", r.Route)
			}
		default:
			add(at+".action", "must be block, mask or route, got %q", r.Action)
		}
	}
	return es
}
