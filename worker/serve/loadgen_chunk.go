package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// sseChunk is what the load generator needs of one streamed completion
// chunk.
type sseChunk struct {
	text             bool // the first choice's text is not empty
	usage            bool // a usage object (not null) came
	completionTokens int  // its completion_tokens
	err              string
}

// scanChunk reads a chunk's JSON object with no reflection or
// allocation (except an error event's message): choices[0].text, usage.
// completion_tokens and error.message, every other value checked as JSON
// and skipped. On the JSON a server writes it says what json.Unmarshal
// into the same fields would (a property test holds it to that), except
// that keys match exactly where encoding/json would also match them
// regardless of case; input that is not one JSON object is an error.
func scanChunk(b []byte) (sseChunk, error) {
	s := jsonScanner{b: b}
	var c sseChunk
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "choices":
			c.text = false
			if s.null() {
				return nil
			}
			first := true
			return s.array(func() error {
				if !first {
					return s.skip()
				}
				first = false
				if s.null() {
					return nil
				}
				return s.object(func(key []byte) error {
					if string(key) != "text" {
						return s.skip()
					}
					if s.null() {
						c.text = false
						return nil
					}
					raw, err := s.str()
					c.text = len(raw) > 0 // any escape decodes to a character
					return err
				})
			})
		case "usage":
			c.usage, c.completionTokens = false, 0
			if s.null() {
				return nil
			}
			c.usage = true
			return s.object(func(key []byte) error {
				if string(key) != "completion_tokens" {
					return s.skip()
				}
				if s.null() {
					return nil
				}
				n, err := s.int()
				c.completionTokens = n
				return err
			})
		case "error":
			c.err = ""
			if s.null() {
				return nil
			}
			from := s.i
			if err := s.skip(); err != nil {
				return err
			}
			var e struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal(s.b[from:s.i], &e); err != nil {
				return err
			}
			c.err = e.Message
			if c.err == "" {
				c.err = "(no message)"
			}
			return nil
		}
		return s.skip()
	})
	if err != nil {
		return sseChunk{}, err
	}
	if s.ws(); s.i != len(s.b) {
		return sseChunk{}, fmt.Errorf("data after the object at byte %d", s.i)
	}
	return c, nil
}

// jsonScanner walks JSON text, checking it as it goes.
type jsonScanner struct {
	b []byte
	i int
}

var errJSONEnd = errors.New("unexpected end of JSON")

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i == len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) want(c byte) error {
	switch got := s.peek(); got {
	case c:
		s.i++
		return nil
	case 0:
		return errJSONEnd
	default:
		return fmt.Errorf("want %q at byte %d, got %q", c, s.i, got)
	}
}

// literal consumes word (true, false, null) if it comes next.
func (s *jsonScanner) literal(word string) bool {
	if s.peek() == word[0] && len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

func (s *jsonScanner) null() bool { return s.literal("null") }

// object calls field with each key, the scanner at the key's value, which
// field must consume. A key with escapes is decoded first.
func (s *jsonScanner) object(field func(key []byte) error) error {
	if err := s.want('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.want('"')
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(s.b[s.i-len(key)-2:s.i], &k); err != nil {
				return err
			}
			key = []byte(k)
		}
		if err := s.want(':'); err != nil {
			return err
		}
		s.ws()
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.want('}')
		}
	}
}

// array calls elem once per element, the scanner at it.
func (s *jsonScanner) array(elem func() error) error {
	if err := s.want('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.want(']')
		}
	}
}

// str consumes a string and returns its bytes between the quotes, escapes
// checked, not decoded.
func (s *jsonScanner) str() ([]byte, error) {
	if err := s.want('"'); err != nil {
		return nil, err
	}
	from := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[from : s.i-1], nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, errJSONEnd
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, errJSONEnd
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, fmt.Errorf("bad \\u escape at byte %d", s.i)
					}
				}
				s.i += 6
			default:
				return nil, fmt.Errorf("bad escape at byte %d", s.i)
			}
		case c < 0x20:
			return nil, fmt.Errorf("control character in a string at byte %d", s.i)
		default:
			s.i++
		}
	}
	return nil, errJSONEnd
}

// number consumes a JSON number and returns its text.
func (s *jsonScanner) number() ([]byte, error) {
	from := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if n := digits(); n == 0 || n > 1 && s.b[s.i-n] == '0' {
		return nil, fmt.Errorf("bad number at byte %d", from)
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, fmt.Errorf("bad number at byte %d", from)
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, fmt.Errorf("bad number at byte %d", from)
		}
	}
	return s.b[from:s.i], nil
}

// int consumes a number that is an int, as json.Unmarshal into an int
// accepts it (no fraction or exponent).
func (s *jsonScanner) int() (int, error) {
	s.ws()
	raw, err := s.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(raw)) // the conversion does not allocate
	if err != nil {
		return 0, fmt.Errorf("completion_tokens %s is not an int", raw)
	}
	return n, nil
}

// skip consumes one value of any kind, checking it.
func (s *jsonScanner) skip() error {
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.number()
		return err
	case s.literal("true"), s.literal("false"), s.null():
		return nil
	case c == 0:
		return errJSONEnd
	default:
		return fmt.Errorf("unexpected %q at byte %d", c, s.i)
	}
}
