package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Quantity is a resource amount as the user wrote it: "20Gi", "512Mi",
// "500m", "2". YAML and JSON numbers are accepted too. The text is kept so
// that a spec round-trips unchanged; Bytes and Milli parse it.
type Quantity string

var binarySuffixes = []struct {
	suffix string
	mult   float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15},
	{"m", 1e-3},
}

// UnmarshalJSON accepts a string or a number.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(strings.TrimSpace(s))
		return nil
	}
	var f json.Number
	if err := json.Unmarshal(b, &f); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Quantity]()}
	}
	*q = Quantity(f.String())
	return nil
}

// value parses the quantity into a float in base units.
func (q Quantity) value() (float64, error) {
	s := string(q)
	if s == "" {
		return 0, nil
	}
	mult := 1.0
	num := s
	for _, sfx := range binarySuffixes {
		if strings.HasSuffix(s, sfx.suffix) {
			mult = sfx.mult
			num = strings.TrimSuffix(s, sfx.suffix)
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("invalid quantity %q (want a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G, T or m)", s)
	}
	v := f * mult
	// >=: math.MaxInt64/1000 rounds up as a float64, and Milli of that
	// value would overflow int64.
	if v >= math.MaxInt64/1000 || v <= -math.MaxInt64/1000 {
		return 0, fmt.Errorf("quantity %q is out of range", s)
	}
	return v, nil
}

// Bytes returns the quantity as a whole number of bytes (for memory).
func (q Quantity) Bytes() (int64, error) {
	v, err := q.value()
	if err != nil {
		return 0, err
	}
	return int64(math.Ceil(v)), nil
}

// Milli returns the quantity in thousandths (for CPU cores: "500m" is 500).
func (q Quantity) Milli() (int64, error) {
	v, err := q.value()
	if err != nil {
		return 0, err
	}
	return int64(math.Round(v * 1000)), nil
}

// FormatBytes renders a byte count for people in the largest binary unit
// it reaches: exact when it divides evenly ("141Gi"), else with one decimal
// ("23.5Gi").
func FormatBytes(n int64) string {
	units := []string{"Pi", "Ti", "Gi", "Mi", "Ki"}
	for i, u := range units {
		m := int64(1) << (10 * (5 - i))
		switch {
		case n < m:
			continue
		case n%m == 0:
			return strconv.FormatInt(n/m, 10) + u
		default:
			return strconv.FormatFloat(float64(n)/float64(m), 'f', 1, 64) + u
		}
	}
	return strconv.FormatInt(n, 10)
}

// Duration is a time.Duration written as "30s" or "2m" in specs.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return &json.UnmarshalTypeError{Value: fmt.Sprintf("string %q", s), Type: reflect.TypeFor[Duration]()}
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Duration]()}
	}
	ns := f * float64(time.Second)
	if ns >= math.MaxInt64 || ns < math.MinInt64 {
		// Out of int64's range the conversion below would wrap around.
		return &json.UnmarshalTypeError{Value: "number " + string(b), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(ns)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// jsonKind names the kind of a raw JSON value for error messages.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '"':
		return "string"
	}
	return "number"
}
