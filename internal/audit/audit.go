// Package audit writes and checks Ark's audit log: one JSON object a line,
// each carrying the SHA-256 of the line before it, so that removing,
// reordering or editing a line breaks the chain at that point and `ark
// operator audit verify` says where. It records who did what (a token's
// accessor, never its secret), not what the request carried.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Entry is one line of the log. A request is written twice: as it starts
// (phase "request") and as it ends (phase "response", with its code and
// outcome), so that a request that crashes the server still left a trace.
type Entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Phase     string    `json:"phase"`
	Request   string    `json:"request"`
	Accessor  string    `json:"accessor,omitempty"`
	Role      string    `json:"role,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Method    string    `json:"method"`
	Route     string    `json:"route"`
	Target    string    `json:"target,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Code      int       `json:"code,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Prev      string    `json:"prev"`
	Hash      string    `json:"hash"`
}

// Phases and outcomes.
const (
	PhaseRequest  = "request"
	PhaseResponse = "response"

	OutcomeOK     = "ok"     // 2xx
	OutcomeDenied = "denied" // 401, 403, 429
	OutcomeFailed = "failed" // anything else
)

// Outcome classifies an HTTP status code.
func Outcome(code int) string {
	switch {
	case code >= 200 && code < 300:
		return OutcomeOK
	case code == 401 || code == 403 || code == 429:
		return OutcomeDenied
	}
	return OutcomeFailed
}

// genesis is the prev of the first line.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// hashOf is the hash a line carries: SHA-256 over its prev and its JSON
// form with the hash left empty.
func hashOf(e Entry) (string, error) {
	e.Hash = ""
	js, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	return hashJSON(e.Prev, js), nil
}

// hashJSON is the hash of an entry whose JSON, with an empty hash, is js.
func hashJSON(prev string, js []byte) string {
	sum := sha256.Sum256(append([]byte(prev+"\n"), js...))
	return hex.EncodeToString(sum[:])
}

// Log appends to an audit file. Safe for concurrent use.
type Log struct {
	mu   sync.Mutex
	f    *os.File
	seq  uint64
	prev string
	now  func() time.Time
	buf  []byte // what the last line was built in, kept for the next
}

// Open opens (creating, mode 0600) the log at path and continues its
// chain. A file whose last line does not verify is refused: appending to
// it would hide where it was cut or edited.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	l := &Log{f: f, prev: genesis, now: time.Now}
	last, err := Verify(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s does not verify, so it is not appended to (move it aside to start a new one): %w", path, err)
	}
	if last != nil {
		l.seq, l.prev = last.Seq, last.Hash
	}
	return l, nil
}

// Append fills in e's sequence number, time, prev and hash, and writes it.
func (l *Log) Append(e Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = l.seq + 1
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	e.Prev = l.prev
	e.Hash = ""
	// The hash covers prev, a newline and the entry's JSON with an empty
	// hash (its last field, `"hash":""}`); the line is that JSON with the
	// hash put in, which is what json.Marshal of the entry with its hash
	// writes (hex needs no escaping). Both are built in one buffer the
	// log keeps.
	buf := append(append(l.buf[:0], e.Prev...), '\n')
	start := len(buf)
	buf, err := appendEntry(buf, &e)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(buf)
	line := buf[start : len(buf)-len(`"}`)] // ends with "hash":"
	at := len(line)
	line = append(line, make([]byte, hex.EncodedLen(len(sum)))...)
	hex.Encode(line[at:], sum[:])
	e.Hash = string(line[at:])
	line = append(line, '"', '}', '\n')
	if cap(line) > cap(buf)-start {
		buf = line // it grew: keep the larger
	}
	l.buf = buf
	// One write a line: a crash leaves at most a torn last line, which
	// Verify reports.
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	l.seq, l.prev = e.Seq, e.Hash
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// ChainError says where a log stops verifying.
type ChainError struct {
	Line int
	Msg  string
}

func (e *ChainError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Verify reads a log from its start and checks every line's hash, its link
// to the line before and its sequence number. It returns the last entry
// (nil for an empty log) or a *ChainError naming the first bad line.
func Verify(r io.ReadSeeker) (*Entry, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReader(r)
	prev, seq := genesis, uint64(0)
	var last *Entry
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if line[len(line)-1] != '\n' {
			return nil, &ChainError{n, "the line does not end (torn by a crash, or cut)"}
		}
		line = line[:len(line)-1]
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, &ChainError{n, fmt.Sprintf("not an audit entry: %v", err)}
		}
		// The hash covers the entry's canonical form; a line in any other
		// form (other key case, spacing, a second value) was not written
		// by Append.
		if canon, err := json.Marshal(e); err != nil || !bytes.Equal(canon, line) {
			return nil, &ChainError{n, "the line is not in the form Append writes (the line was edited)"}
		}
		if e.Prev != prev {
			return nil, &ChainError{n, fmt.Sprintf("prev is %s, but the line before hashes to %s (a line was removed, reordered or edited)", short(e.Prev), short(prev))}
		}
		h, err := hashOf(e)
		if err != nil {
			return nil, &ChainError{n, err.Error()}
		}
		if h != e.Hash {
			return nil, &ChainError{n, fmt.Sprintf("hash is %s, but the line hashes to %s (the line was edited)", short(e.Hash), short(h))}
		}
		if e.Seq != seq+1 {
			return nil, &ChainError{n, fmt.Sprintf("seq %d follows %d", e.Seq, seq)}
		}
		prev, seq = e.Hash, e.Seq
		last = &e
	}
}

// VerifyFile verifies the log at path and says how many entries it holds.
func VerifyFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	last, err := Verify(f)
	if err != nil {
		return 0, err
	}
	if last == nil {
		return 0, nil
	}
	return int(last.Seq), nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
