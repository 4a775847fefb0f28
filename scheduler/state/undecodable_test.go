package state

import (
	"errors"
	"strings"
	"testing"
)

// TestApplyUnknownIgnorableType: a type with IgnoreUnknownTypeFlag set that
// this version does not know (a newer leader wrote it) is skipped, and the
// entries after it still apply. 238 is such a type: 128|110.
func TestApplyUnknownIgnorableType(t *testing.T) {
	for _, typ := range []MessageType{238, IgnoreUnknownTypeFlag | 50, 255} {
		t.Run(typ.String(), func(t *testing.T) {
			h := newHarness(t)
			h.index++
			if r := h.fsm.ApplyEntry(h.index, append([]byte{byte(typ)}, `{"anything":1}`...)); r != nil {
				t.Fatalf("ignorable entry answered %v", r)
			}
			if err := h.fsm.Fatal(); err != nil {
				t.Fatalf("ignorable entry halted the FSM: %v", err)
			}
			h.addJob("a", 1, 1)
			if got := h.job("a"); got.CreateIndex != 2 {
				t.Fatalf("job after the skipped entry has create index %d, want 2", got.CreateIndex)
			}
		})
	}
}

// TestApplyUndecodableEntry: an entry this version cannot apply (unknown
// type without the ignore flag, a body that does not decode, an empty
// entry) does not panic: it halts the FSM with an error naming the index
// and how to recover, the store is left as it was, later entries are not
// applied (applying around the entry would diverge from the servers that
// can read it) and no snapshot is taken past it. A restore (a snapshot from
// the leader or the operator) replaces the state and lifts the halt.
func TestApplyUndecodableEntry(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty entry", nil, "empty entry"},
		{"bad JSON", append([]byte{byte(RegisterJobType)}, `{"job":`...), "decode RegisterJob"},
		{"wrong shape", append([]byte{byte(AllocStatusType)}, `[1,2]`...), "decode AllocStatus"},
		{"unknown type", append([]byte{99}, `{}`...), "unknown message type 99"},
		{"unknown type 127", append([]byte{127}, `{}`...), "unknown message type 127"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.addJob("before", 1, 1)
			good := h.snap().LatestIndex()
			r := h.fsm.ApplyEntry(7, tt.data)
			err, isErr := r.(error)
			var ue *UndecodableEntryError
			if !isErr || !errors.As(err, &ue) || ue.Index != 7 {
				t.Fatalf("ApplyEntry answered %T %v, want an *UndecodableEntryError at index 7", r, r)
			}
			for _, want := range []string{"index 7", tt.want, "docs/design.md"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if !errors.Is(h.fsm.Fatal(), err) {
				t.Fatalf("Fatal() = %v, want %v", h.fsm.Fatal(), err)
			}
			select {
			case <-h.fsm.Halted():
			default:
				t.Fatal("Halted() not closed")
			}
			if n := len(h.snap().Jobs(nil)); n != 1 || h.snap().LatestIndex() != good {
				t.Fatal("an undecodable entry wrote to the store")
			}

			// Later entries are refused with the same error.
			data, _ := Encode(RegisterJobType, RegisterJobRequest{Job: testJob("after", 1, 1)})
			if r := h.fsm.ApplyEntry(8, data); !errors.Is(asErr(r), err) {
				t.Fatalf("entry after the halt answered %v", r)
			}
			if h.snap().Job(nil, "after") != nil {
				t.Fatal("an entry after the halt was applied")
			}
			if _, serr := h.fsm.Snapshot(); serr == nil || !strings.Contains(serr.Error(), "index 7") {
				t.Fatalf("Snapshot after the halt = %v, want an error naming index 7", serr)
			}

			// The operator's way out: the state comes back from a
			// snapshot (and the entry is no longer replayed).
			src := newHarness(t)
			src.addJob("restored", 1, 1)
			snap, _ := src.fsm.Snapshot()
			sink := &memSink{}
			if err := snap.Persist(sink); err != nil {
				t.Fatal(err)
			}
			if err := h.fsm.Restore(readCloser(sink.Bytes())); err != nil {
				t.Fatal(err)
			}
			if err := h.fsm.Fatal(); err != nil {
				t.Fatalf("Fatal() after restore = %v", err)
			}
			if r := h.fsm.ApplyEntry(9, data); asErr(r) != nil || h.snap().Job(nil, "after") == nil {
				t.Fatalf("entry after restore answered %v", r)
			}
		})
	}
}

// TestMessageTypesKnown: the types this version applies are exactly the
// named ones, and none carries the ignore flag (an older server would skip
// it without a word).
func TestMessageTypesKnown(t *testing.T) {
	for i := 0; i < 256; i++ {
		typ := MessageType(i)
		named := !strings.HasPrefix(typ.String(), "MessageType(")
		if typ.known() != named {
			t.Errorf("type %d: known %v, named %v", i, typ.known(), named)
		}
		if typ.known() && typ&IgnoreUnknownTypeFlag != 0 {
			t.Errorf("%s has the ignore flag set", typ)
		}
	}
}

func asErr(r any) error {
	err, _ := r.(error)
	return err
}
