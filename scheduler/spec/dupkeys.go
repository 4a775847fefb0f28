package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// duplicateKeys reports the first key repeated within one JSON object of
// data, depth first, naming the object by its path: encoding/json would
// silently keep the last one. It reads encoding/json's token stream, so
// keys equal once decoded ("a", "\u0061") count as one.
//
// Only decode's general path calls it, for a document parseTree refused
// (a repeated key, a number out of range, nesting past maxTreeDepth):
// plain specs never reach it, so it is written for clarity, not speed.
func duplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	// A number is a token, whatever float64 can hold: 1e700 is valid
	// JSON, with no key to repeat (the decode into the spec refuses it).
	dec.UseNumber()
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Errorf("key %q is repeated in %s", k, orTop(path))
				}
				seen[k] = true
				if err := walk(join(path, k)); err != nil {
					return err
				}
			}
			_, err = dec.Token() // the closing brace
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk("")
}
