package spec

import (
	"encoding/json"
	"reflect"
	"strconv"
	"sync"
)

// parseTree reads a JSON document once into the value json.Unmarshal
// would make of it (map[string]any, []any, string, float64, bool, nil),
// for decode's fast path. It answers ok only for a document that
// json.Valid accepts, with no key repeated in an object and every number
// a float64 holds; for anything else (a syntax error, a repeated key, a
// number out of range, nesting deeper than maxTreeDepth) it answers not ok
// and decode takes its general path, which finds and words the problem.
// That path was three passes (json.Valid, the duplicate-key scan and
// json.Unmarshal); TestFastDecodeMatchesReference and FuzzFastDecode hold
// this one to them.
func parseTree(data []byte) (any, bool) {
	p := treeParser{data: data}
	v, ok := p.value(0)
	if !ok {
		return nil, false
	}
	p.ws()
	if p.i != len(p.data) {
		return nil, false // more text after the document
	}
	return v, true
}

// maxTreeDepth bounds parseTree's recursion; a deeper document (no spec
// is) goes the general way.
const maxTreeDepth = 128

type treeParser struct {
	data []byte
	i    int
}

func (p *treeParser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *treeParser) value(depth int) (any, bool) {
	p.ws()
	if p.i >= len(p.data) || depth > maxTreeDepth {
		return nil, false
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	for _, lit := range [...]struct {
		text string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if len(p.data)-p.i >= len(lit.text) && string(p.data[p.i:p.i+len(lit.text)]) == lit.text {
			p.i += len(lit.text)
			return lit.v, true
		}
	}
	return nil, false
}

func (p *treeParser) object(depth int) (any, bool) {
	p.i++ // {
	m := map[string]any{}
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return m, true
	}
	for {
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, false
		}
		var k string
		if raw, ok := p.plainStr(); ok {
			// A field name of the spec is not allocated again.
			if k, ok = specKeys()[string(raw)]; !ok {
				k = string(raw)
			}
		} else {
			kv, ok := p.str()
			if !ok {
				return nil, false
			}
			k = kv.(string)
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, false
		}
		p.i++
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v
		if done, ok := p.after('}'); !ok {
			return nil, false
		} else if done {
			return m, true
		}
	}
}

func (p *treeParser) array(depth int) (any, bool) {
	p.i++ // [
	a := []any{}
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return a, true
	}
	for {
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if done, ok := p.after(']'); !ok {
			return nil, false
		} else if done {
			return a, true
		}
	}
}

// after reads what follows a member or an element: a comma (another
// follows) or the closing bracket (done); anything else is not ok.
func (p *treeParser) after(closing byte) (done, ok bool) {
	p.ws()
	if p.i >= len(p.data) {
		return false, false
	}
	switch p.data[p.i] {
	case ',':
		p.i++
		return false, true
	case closing:
		p.i++
		return true, true
	}
	return false, false
}

// plainStr reads a string at p.i that is printable ASCII without escapes
// and returns its bytes; it leaves p.i alone for any other.
func (p *treeParser) plainStr() ([]byte, bool) {
	for j := p.i + 1; j < len(p.data); j++ {
		switch c := p.data[j]; {
		case c == '"':
			raw := p.data[p.i+1 : j]
			p.i = j + 1
			return raw, true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// str reads a string at p.i. One of printable ASCII without escapes is
// taken as it is; any other is checked here and unquoted by
// encoding/json, so that escapes, surrogates and invalid UTF-8 come out
// as json.Unmarshal makes them.
func (p *treeParser) str() (any, bool) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				return string(p.data[start+1 : p.i-1]), true
			}
			var s string
			if json.Unmarshal(p.data[start:p.i], &s) != nil {
				return nil, false
			}
			return s, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			plain = false
			p.i++
			if p.i >= len(p.data) {
				return nil, false
			}
			switch p.data[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if len(p.data)-p.i < 5 {
					return nil, false
				}
				for _, h := range p.data[p.i+1 : p.i+5] {
					if !isHex(h) {
						return nil, false
					}
				}
				p.i += 5
			default:
				return nil, false
			}
			continue
		case c >= 0x80:
			plain = false
		}
		p.i++
	}
	return nil, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as a float64,
// as json.Unmarshal does into an interface.
func (p *treeParser) number() (any, bool) {
	start := p.i
	if p.data[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.data) && p.data[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, false
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(string(p.data[start:p.i]), 64)
	if err != nil {
		return nil, false
	}
	return f, true
}

// specKeys holds the JSON names of every field of the spec's types, each
// once, so that parseTree does not allocate the keys it reads.
var specKeys = sync.OnceValue(func() map[string]string {
	keys := map[string]string{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for name, f := range jsonFields(t) {
			keys[name] = name
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Job]())
	return keys
})
