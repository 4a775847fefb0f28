package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// duplicateKeys is checkDuplicateKeys for a document json.Valid accepted,
// without encoding/json's token stream, whose allocation per token made it
// a tenth of the leader's CPU per submission. It walks the bytes once and
// reports the first repeated key, depth first, with the same message. A
// key with an escape or a non-ASCII byte is unquoted as encoding/json
// does, so that keys equal once decoded ("a", "\u0061") count as one.
// FuzzDuplicateKeys checks it against checkDuplicateKeys.
func duplicateKeys(data []byte) error {
	d := dupScanner{data: data}
	return d.value("")
}

type dupScanner struct {
	data []byte
	i    int
}

func (d *dupScanner) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value skips one value at d.i, checking the objects in it; path names it.
func (d *dupScanner) value(path string) error {
	d.ws()
	if d.i >= len(d.data) {
		return nil
	}
	switch d.data[d.i] {
	case '{':
		return d.object(path)
	case '[':
		d.i++
		for n := 0; ; n++ {
			d.ws()
			if d.i < len(d.data) && d.data[d.i] == ']' {
				d.i++
				return nil
			}
			if err := d.value(path + "[" + strconv.Itoa(n) + "]"); err != nil {
				return err
			}
			d.ws()
			if d.i < len(d.data) && d.data[d.i] == ',' {
				d.i++
			}
		}
	case '"':
		d.str()
		return nil
	}
	// A number, true, false or null: up to the next delimiter.
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return nil
		}
		d.i++
	}
	return nil
}

func (d *dupScanner) object(path string) error {
	d.i++ // {
	var seen map[string]bool
	for {
		d.ws()
		if d.i >= len(d.data) || d.data[d.i] == '}' {
			d.i++
			return nil
		}
		k, err := d.key()
		if err != nil {
			return err
		}
		if seen[k] {
			return fmt.Errorf("key %q is repeated in %s", k, orTop(path))
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[k] = true
		d.ws()
		d.i++ // :
		if err := d.value(join(path, k)); err != nil {
			return err
		}
		d.ws()
		if d.i < len(d.data) && d.data[d.i] == ',' {
			d.i++
		}
	}
}

// str skips a string at d.i and returns its raw bytes (without quotes)
// and whether it holds an escape or a byte past ASCII.
func (d *dupScanner) str() (raw []byte, plain bool) {
	start := d.i
	d.i++ // "
	plain = true
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '\\':
			plain = false
			d.i += 2
			continue
		case c == '"':
			d.i++
			return d.data[start+1 : d.i-1], plain
		case c >= 0x80:
			plain = false
		}
		d.i++
	}
	return d.data[start+1:], plain
}

func (d *dupScanner) key() (string, error) {
	start := d.i
	raw, plain := d.str()
	if plain {
		return string(raw), nil
	}
	var k string
	if err := json.Unmarshal(d.data[start:d.i], &k); err != nil {
		return "", err
	}
	return k, nil
}
