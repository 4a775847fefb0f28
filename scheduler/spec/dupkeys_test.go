package spec

import (
	"fmt"
	"testing"
)

// TestDuplicateKeys: the first repeated key, depth first, named by its
// object's path; keys equal once decoded are one key.
func TestDuplicateKeys(t *testing.T) {
	for _, c := range dupKeyCases {
		if got := fmt.Sprint(duplicateKeys([]byte(c.doc))); got != c.want {
			t.Errorf("duplicateKeys(%q) = %s, want %s", c.doc, got, c.want)
		}
	}
}

// dupKeyCases are also decode's corpus (TestFastDecodeMatchesReference).
var dupKeyCases = []struct{ doc, want string }{
	{"{}", "<nil>"},
	{"[]", "<nil>"},
	{"1", "<nil>"},
	{"\"s\"", "<nil>"},
	{"null", "<nil>"},
	{"{\"a\":1,\"b\":2}", "<nil>"},
	{"{\"a\":1,\"a\":2}", "key \"a\" is repeated in the spec"},
	{"{\"a\":{\"b\":1,\"c\":{\"d\":1,\"d\":2}}}", "key \"d\" is repeated in a.c"},
	{"{\"a\":[{\"x\":1},{\"x\":1,\"y\":[1,{\"z\":1,\"z\":2}]}]}", "key \"z\" is repeated in a[1].y[1]"},
	{"{\"a\":1,\"\\u0061\":2}", "key \"a\" is repeated in the spec"},
	{"{\"a\\\"b\":1,\"a\\\"b\":2}", "key \"a\\\"b\" is repeated in the spec"},
	{"{\"\\ud83d\\ude00\":1,\"😀\":2}", "key \"😀\" is repeated in the spec"},
	{"{\"\xff\":1,\"\xfe\":2}", "key \"�\" is repeated in the spec"},
	{"{\"k\":\"v\\\\\",\"k2\":\"\\\"}\"}", "<nil>"},
	{"{ \"a\" : [ 1 , 2 , { \"b\" : true , \"b\" : false } ] }", "key \"b\" is repeated in a[2]"},
	{"{\"task\":{\"exec\":{\"env\":{\"A\":\"1\",\"B\":\"2\",\"A\":\"3\"}}}}", "key \"A\" is repeated in task.exec.env"},
	{"[{\"a\":1},{\"a\":1},[{\"a\":1,\"a\":1}]]", "key \"a\" is repeated in [2][0]"},
	{"{\"a\":{},\"b\":{},\"a\":{}}", "key \"a\" is repeated in the spec"},
	{"{\"\":1,\"\":2}", "key \"\" is repeated in the spec"},
	{"{\"n\":-1.5e10,\"t\":true,\"f\":false,\"z\":null,\"n\":0}", "key \"n\" is repeated in the spec"},
	{"1e700", "<nil>"},
	{"{\"a\":1e700,\"a\":1}", "key \"a\" is repeated in the spec"},
}

func dupKeyDocs() []string {
	docs := make([]string, len(dupKeyCases))
	for i, c := range dupKeyCases {
		docs[i] = c.doc
	}
	return docs
}
