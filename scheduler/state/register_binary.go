package state

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// The binary form of registrations (RegisterJobsBinaryType). Registering
// jobs is the command the log carries most of under load, and every server
// decodes each entry: in JSON that decode was 10-14% of a follower's CPU
// (bench/README.md, "Raft"). The body of a RegisterJobsBinary entry is
//
//	version byte (registerBinaryV1)
//	CBOR (RFC 8949) array of RegisterJobRequest
//
// In version 1 each request is a CBOR map keyed by the same names as its
// JSON (the `json` tags, omitempty included), so a field added later is
// read as absent by older code and a field removed later is ignored, as in
// JSON; times are RFC 3339 text with nanoseconds, as JSON writes them.
// Spec types with their own JSON form (spec.Duration, spec.Quantity) are
// written as their Go value. A new layout takes a new version byte; a
// server meets an unknown one as an undecodable entry (it halts rather
// than diverge).
const registerBinaryV1 byte = 1

var (
	registerEnc = mustEncMode(cbor.EncOptions{Time: cbor.TimeRFC3339Nano})
	// The decoder reads what the log holds, which is outside input. What
	// a spec may hold must decode, or every server would halt on it: a
	// list or map (a task's env) is as long as the spec's size allows, so
	// arrays and maps may be as long as the library allows (the input
	// bounds what a count can claim: the input is checked whole before
	// anything is allocated). Nesting follows the Go types, well within
	// the library's default of 32. Strings that are not valid UTF-8 decode
	// as they are rather than stop the server (the encoder writes none:
	// see EncodeRegisterJobItem).
	registerDec = mustDecMode(cbor.DecOptions{
		UTF8:             cbor.UTF8DecodeInvalid,
		MaxNestedLevels:  32,
		MaxArrayElements: math.MaxInt32,
		MaxMapPairs:      math.MaxInt32,
	})
)

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// EncodeRegisterJobItem encodes one registration for
// EncodeRegisterJobsBinary. The leader encodes each submission in its own
// request goroutine; the batch only joins the items.
//
// A submit token may hold bytes that are not UTF-8 (it comes from an HTTP
// header). JSON wrote each such byte as U+FFFD; so does this, so that a
// job stores the token it stored when registrations were JSON.
//
// The item is decoded again before it is returned: an item that would not
// decode (a time past year 9999, which JSON refused to encode) is this
// request's error, never an entry that stops every server.
func EncodeRegisterJobItem(req *RegisterJobRequest) ([]byte, error) {
	if req.Job != nil && !utf8.ValidString(req.Job.SubmitToken) {
		j := *req.Job
		j.SubmitToken = jsonUTF8(j.SubmitToken)
		req = &RegisterJobRequest{Job: &j}
	}
	b, err := registerEnc.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s item: %w", RegisterJobsBinaryType, err)
	}
	var back RegisterJobRequest
	if err := registerDec.Unmarshal(b, &back); err != nil {
		return nil, fmt.Errorf("encode %s item: the encoding would not decode: %w", RegisterJobsBinaryType, err)
	}
	return b, nil
}

// jsonUTF8 replaces each byte of s that is not part of a valid UTF-8
// sequence with U+FFFD, as encoding/json's encoder does.
func jsonUTF8(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

// EncodeRegisterJobsBinary builds a RegisterJobsBinary entry from items
// that EncodeRegisterJobItem made. It decodes as RegisterJobsRequest{
// Requests: the items' requests, in order}.
func EncodeRegisterJobsBinary(items [][]byte) ([]byte, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("encode %s: no requests", RegisterJobsBinaryType)
	}
	n := 2 + 9
	for _, it := range items {
		if len(it) == 0 {
			return nil, fmt.Errorf("encode %s: empty item", RegisterJobsBinaryType)
		}
		n += len(it)
	}
	b := make([]byte, 0, n)
	b = append(b, byte(RegisterJobsBinaryType), registerBinaryV1)
	b = appendCBORArrayHead(b, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b, nil
}

// appendCBORArrayHead appends the head of a definite-length CBOR array of
// n items (major type 4, RFC 8949 section 3.1).
func appendCBORArrayHead(b []byte, n uint64) []byte {
	const major = 4 << 5
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return append(b, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// decodeRegisterJobsBinary reads the body of a RegisterJobsBinary entry
// (the entry without its type byte); on failure it sets *bad and reports
// false.
func decodeRegisterJobsBinary(body []byte, bad *error) (*RegisterJobsRequest, bool) {
	fail := func(err error) (*RegisterJobsRequest, bool) {
		*bad = fmt.Errorf("decode %s: %w", RegisterJobsBinaryType, err)
		return nil, false
	}
	if len(body) == 0 {
		return fail(errors.New("empty body"))
	}
	if v := body[0]; v != registerBinaryV1 {
		return fail(fmt.Errorf("unknown format version %d (this server reads %d)", v, registerBinaryV1))
	}
	var reqs []RegisterJobRequest
	if err := registerDec.Unmarshal(body[1:], &reqs); err != nil {
		return fail(err)
	}
	if len(reqs) == 0 {
		return fail(errors.New("no requests"))
	}
	return &RegisterJobsRequest{Requests: reqs}, true
}
