package spec

import (
	"regexp"
	"strconv"
	"strings"
)

// adapterNameRE is what an adapter's name may be: it travels in requests'
// model field and in URL paths (DELETE /v1/adapters/{name}).
var adapterNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidAdapterName reports whether s may name a served adapter.
func ValidAdapterName(s string) bool { return adapterNameRE.MatchString(s) }

// validateLoRA checks task.builtin.lora (finetune jobs) and
// task.builtin.adapters (inference jobs).
func validateLoRA(kind string, b *BuiltinTask, add func(path, format string, args ...any)) {
	if l := b.LoRA; l != nil {
		if kind != KindFinetune {
			add("task.builtin.lora", "only finetune jobs train adapters, this is a %s job", kind)
		}
		if strings.TrimSpace(b.Base) == "" {
			add("task.builtin.base", "is required with task.builtin.lora (the frozen checkpoint the adapter trains on)")
		}
		if l.Rank < 1 || l.Rank > 1024 {
			add("task.builtin.lora.rank", "must be between 1 and 1024, got %d", l.Rank)
		}
		if l.Alpha < 0 {
			add("task.builtin.lora.alpha", "must be >= 0 (0: twice the rank), got %g", l.Alpha)
		}
		seen := map[string]bool{}
		for i, t := range l.Targets {
			path := "task.builtin.lora.targets[" + strconv.Itoa(i) + "]"
			switch {
			case t != "attn" && t != "mlp":
				add(path, "must be attn or mlp, got %q", t)
			case seen[t]:
				add(path, "%q is given twice", t)
			}
			seen[t] = true
		}
	}
	if len(b.Rules) > 0 && kind != KindInference {
		add("task.builtin.rules", "only inference jobs apply rules, this is a %s job", kind)
	}
	for _, e := range ValidateRules("task.builtin.rules", b.Rules) {
		add(e.Path, "%s", e.Msg)
	}
	if len(b.Adapters) > 0 && kind != KindInference {
		add("task.builtin.adapters", "only inference jobs serve adapters, this is a %s job", kind)
	}
	names := map[string]bool{}
	for i, a := range b.Adapters {
		path := "task.builtin.adapters[" + strconv.Itoa(i) + "]"
		switch {
		case a.Name == "":
			add(path+".name", "is required (the model name requests use)")
		case !ValidAdapterName(a.Name):
			add(path+".name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", a.Name)
		case a.Name == b.Model:
			add(path+".name", "%q is the base model's name", a.Name)
		case names[a.Name]:
			add(path+".name", "%q is given twice", a.Name)
		}
		names[a.Name] = true
		if strings.TrimSpace(a.URI) == "" {
			add(path+".uri", "is required (the adapter's checkpoint)")
		}
	}
}
