package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// oddStrings are texts whose JSON needs every kind of escape that
// encoding/json writes.
var oddStrings = []string{
	"", "job-1", `q"uo\te`, "<a&b>", "téléchargé 日本", "\x01\n\b\f\r\t\x1f\x7f",
	"\xff\xfe bad utf-8 \xc3", "line\u2028para\u2029", "emoji 😀", "\u00e9\u0301", "/v1/jobs/{id}",
	"a\x00b", "\xed\xa0\x80", // a lone surrogate, encoded
}

// TestAppendEntryIsMarshal: appendEntry writes what json.Marshal writes,
// for entries with and without the omitted fields, odd text and times in
// and out of UTC.
func TestAppendEntryIsMarshal(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	times := []time.Time{
		{}, time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 11, 0, 0, 123456789, time.UTC),
		time.Date(2026, 12, 6, 11, 0, 0, 120000000, time.UTC), time.Date(2026, 12, 6, 11, 0, 0, 0, paris),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
	}
	var entries []Entry
	for i, s := range oddStrings {
		entries = append(entries,
			Entry{Seq: uint64(i), Time: times[i%len(times)], Phase: s, Request: s, Method: s, Route: s, Prev: s, Hash: s},
			Entry{Seq: 1<<64 - 1, Time: times[(i+1)%len(times)], Phase: PhaseResponse, Request: "r", Accessor: s, Role: s,
				Namespace: s, Method: "POST", Route: "POST /v1/jobs", Target: s, Remote: s, Code: -i * 100, Outcome: s, Prev: genesis},
			Entry{Time: times[(i+2)%len(times)], Code: 201 + i, Target: s, Outcome: OutcomeOK},
		)
	}
	for _, e := range entries {
		want, werr := json.Marshal(e)
		got, gerr := appendEntry([]byte("prefix"), &e)
		if (werr != nil) != (gerr != nil) {
			t.Errorf("%+v: error %v, json.Marshal's %v", e, gerr, werr)
			continue
		}
		if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("appendEntry:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}

func FuzzAppendEntry(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(uint64(len(s)), int64(1765018800123456789), s, s, 201)
	}
	f.Fuzz(func(t *testing.T, seq uint64, nanos int64, a, b string, code int) {
		e := Entry{Seq: seq, Time: time.Unix(0, nanos).UTC(), Phase: a, Request: b, Accessor: a, Method: b,
			Route: a, Target: b, Remote: a, Code: code, Outcome: b, Prev: a, Hash: b}
		want, werr := json.Marshal(e)
		got, gerr := appendEntry(nil, &e)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("appendEntry = %s, %v\njson.Marshal = %s, %v", got, gerr, want, werr)
		}
	})
}

// BenchmarkAppend is one line of the log, as a submission writes two.
func BenchmarkAppend(b *testing.B) {
	l, err := Open(b.TempDir() + "/audit.log")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := Entry{Phase: PhaseResponse, Request: "a1b2c3d4", Accessor: "4f1c2d3e4f5a6b7c", Role: "namespace", Namespace: "default",
		Method: "POST", Route: "POST /v1/jobs", Remote: "127.0.0.1:54321", Code: 201, Outcome: OutcomeOK}
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendKeptBuffer: lines longer and shorter than the one before (the
// kept buffer grows, then is reused) are each their entry's JSON and the
// chain verifies.
func TestAppendKeptBuffer(t *testing.T) {
	path := t.TempDir() + "/audit.log"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	lengths := []int{1, 200, 5000, 3, 70000, 10, 64, 65}
	for _, n := range lengths {
		if err := l.Append(Entry{Phase: PhaseRequest, Request: "r", Method: "POST", Route: "POST /v1/jobs", Target: strings.Repeat("é<", n)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	lines := logLines(t, path)
	if len(lines) != len(lengths) {
		t.Fatalf("%d lines, want %d", len(lines), len(lengths))
	}
	for i, line := range lines {
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if want, _ := json.Marshal(e); !bytes.Equal(line, want) || e.Target != strings.Repeat("é<", lengths[i]) {
			t.Errorf("line %d is not its entry's JSON", i+1)
		}
	}
	if n, err := VerifyFile(path); err != nil || n != len(lengths) {
		t.Fatalf("VerifyFile = %d, %v", n, err)
	}
}
