package spec

import (
	"slices"
	"testing"
)

// TestReadRoots: the local paths a builtin task may read are its local
// checkpoints and their stores, whatever names them (base items, data,
// adapters); object stores and relative paths open nothing.
func TestReadRoots(t *testing.T) {
	cases := []struct {
		name   string
		b      *BuiltinTask
		shared string
		want   []string
	}{
		{"none", nil, "", nil},
		{"a base STORE/JOB: its store", &BuiltinTask{Base: "/m/base/gpt"}, "", []string{"/m/base", "/m/base/gpt"}},
		{"a file:// adapter of a store", &BuiltinTask{Base: "s3://b/base", Adapters: []Adapter{{Name: "a", URI: "file:///st/job/7"}}}, "",
			[]string{"/st", "/st/job/7"}},
		{"a step with leading zeros", &BuiltinTask{Base: "/srv/ark/nlp/ft/000000000050"}, "/srv/ark", []string{"/srv/ark/nlp", "/srv/ark/nlp/ft/000000000050"}},
		{"localhost, dots and duplicates", &BuiltinTask{Base: "file://localhost/st/x/../job/1, /st/job/1", Data: "file:///st/job/2"}, "",
			[]string{"/st", "/st/job/1", "/st/job/2"}},
		// Data is read as named: a file near / opens that file, not /.
		{"data near the root", &BuiltinTask{Data: "file:///data/corpus.txt"}, "", []string{"/data/corpus.txt"}},
		{"a checkpoint near the root", &BuiltinTask{Base: "/job/7", Adapters: []Adapter{{Name: "a", URI: "file:///ad"}}}, "", []string{"/ad", "/job/7"}},
		{"not local", &BuiltinTask{Base: "s3://b/base,model://gpt@1", Data: "examples/data.txt",
			Adapters: []Adapter{{Name: "a", URI: "file://host/st/j/1"}, {Name: "b", URI: "s3://b/a/j/1"}}}, "", nil},
		// The cluster's store holds every namespace: a checkpoint read
		// through it, or above it, opens its own path alone.
		{"a job's latest named STORE/NAMESPACE/JOB", &BuiltinTask{Base: "file:///srv/ark/nlp/5"}, "/srv/ark", []string{"/srv/ark/nlp/5"}},
		{"the same with no cluster store known", &BuiltinTask{Base: "file:///srv/ark/nlp/5"}, "", []string{"/srv/ark", "/srv/ark/nlp/5"}},
		{"a namespace directory as STORE/JOB", &BuiltinTask{Base: "/srv/ark/nlp"}, "/srv/ark", []string{"/srv/ark/nlp"}},
		{"a store above the cluster's", &BuiltinTask{Adapters: []Adapter{{Name: "a", URI: "/srv/j/7"}}}, "/srv/ark", []string{"/srv/j/7"}},
		{"a store beside the cluster's", &BuiltinTask{Base: "/srv/other/j/3"}, "/srv/ark", []string{"/srv/other", "/srv/other/j/3"}},
	}
	for _, tc := range cases {
		if got := ReadRoots(tc.b, tc.shared); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ReadRoots = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestUncovered: a path is covered by itself or a directory above it (not
// by a sibling sharing a prefix), and of the new paths the topmost are
// named.
func TestUncovered(t *testing.T) {
	cases := []struct {
		name       string
		have, want []string
		new        []string
	}{
		{"same", []string{"/st", "/st/j/1"}, []string{"/st", "/st/j/1"}, nil},
		{"below a root", []string{"/st"}, []string{"/st/k/2"}, nil},
		{"the filesystem's root", []string{"/"}, []string{"/x/y"}, nil},
		{"a sibling prefix", []string{"/st"}, []string{"/st2/k/2", "/st2"}, []string{"/st2"}},
		{"two new stores", []string{"/a"}, []string{"/c/j/1", "/b", "/c", "/b/j/1", "/a/j"}, []string{"/b", "/c"}},
		{"nothing held", nil, []string{"/b/j/1"}, []string{"/b/j/1"}},
		{"nothing wanted", []string{"/a"}, nil, nil},
	}
	for _, tc := range cases {
		if got := Uncovered(tc.have, tc.want); !slices.Equal(got, tc.new) {
			t.Errorf("%s: Uncovered = %q, want %q", tc.name, got, tc.new)
		}
	}
}
