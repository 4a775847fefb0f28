package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// checkDuplicateKeys is the plain reference duplicateKeys is checked
// against: encoding/json's token stream, which reports a key repeated
// within one JSON object (that encoding/json would silently resolve to the
// last one).
func checkDuplicateKeys(data []byte) error {
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

var dupKeyCases = []string{
	`{}`, `[]`, `1`, `"s"`, `null`,
	`{"a":1,"b":2}`,
	`{"a":1,"a":2}`,
	`{"a":{"b":1,"c":{"d":1,"d":2}}}`,
	`{"a":[{"x":1},{"x":1,"y":[1,{"z":1,"z":2}]}]}`,
	`{"a":1,"\u0061":2}`,
	`{"a\"b":1,"a\"b":2}`,
	`{"\ud83d\ude00":1,"😀":2}`,
	"{\"\xff\":1,\"\xfe\":2}",
	`{"k":"v\\","k2":"\"}"}`,
	`{ "a" : [ 1 , 2 , { "b" : true , "b" : false } ] }`,
	`{"task":{"exec":{"env":{"A":"1","B":"2","A":"3"}}}}`,
	`[{"a":1},{"a":1},[{"a":1,"a":1}]]`,
	`{"a":{},"b":{},"a":{}}`,
	`{"":1,"":2}`,
	`{"n":-1.5e10,"t":true,"f":false,"z":null,"n":0}`,
	`1e700`, `{"a":1e700,"a":1}`,
}

func TestDuplicateKeysMatchesReference(t *testing.T) {
	for _, doc := range dupKeyCases {
		checkDupAgainstReference(t, []byte(doc))
	}
}

// FuzzDuplicateKeys: on every document json.Valid accepts, the scanner
// finds the repeated key the token stream finds, with the same message.
func FuzzDuplicateKeys(f *testing.F) {
	for _, doc := range dupKeyCases {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkDupAgainstReference(t, doc)
	})
}

func checkDupAgainstReference(t *testing.T, doc []byte) {
	t.Helper()
	doc = bytes.TrimSpace(doc)
	if !json.Valid(doc) {
		return
	}
	got, want := duplicateKeys(doc), checkDuplicateKeys(doc)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%q: scanner %v, reference %v", doc, got, want)
	}
}
