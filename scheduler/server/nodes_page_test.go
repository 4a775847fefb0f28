package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestListNodesPages: ?per_page pages the list in name order, the header
// names the next page, the pages put together are the whole list, and
// without per_page the answer is the whole list as before.
func TestListNodesPages(t *testing.T) {
	s := listServer(t, 25)
	get := func(query string) ([]*api.Node, string, int, string) {
		w := httptest.NewRecorder()
		s.handleListNodes(w, httptest.NewRequest(http.MethodGet, "/v1/nodes"+query, nil))
		var nodes []*api.Node
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &nodes); err != nil {
				t.Fatal(err)
			}
		}
		return nodes, w.Header().Get(api.NextTokenHeader), w.Code, w.Body.String()
	}
	all, next, code, _ := get("")
	if code != 200 || len(all) != 25 || next != "" {
		t.Fatalf("whole list: %d nodes, next %q, status %d", len(all), next, code)
	}
	for _, n := range all {
		if n.SecretDigest != "" {
			t.Fatalf("node %s served with its secret digest", n.Name)
		}
	}
	for _, per := range []int{1, 7, 25, 100} {
		var got []string
		tok, pages := "", 0
		for {
			q := url.Values{"per_page": {strconv.Itoa(per)}}
			if tok != "" {
				q.Set("next_token", tok)
			}
			nodes, next, code, body := get("?" + q.Encode())
			if code != 200 {
				t.Fatalf("per_page %d: %d %s", per, code, body)
			}
			if len(nodes) > per {
				t.Fatalf("per_page %d: a page of %d", per, len(nodes))
			}
			for _, n := range nodes {
				got = append(got, n.Name)
			}
			pages++
			if next == "" {
				break
			}
			tok = next
		}
		if pages != (25+per-1)/per || len(got) != 25 {
			t.Fatalf("per_page %d: %d pages, %d nodes", per, pages, len(got))
		}
		for i, n := range all {
			if got[i] != n.Name {
				t.Fatalf("per_page %d: node %d is %s, want %s", per, i, got[i], n.Name)
			}
		}
	}
	for _, c := range []struct{ query, want string }{
		{"?per_page=0", "per_page: want a positive integer"},
		{"?per_page=-3", "per_page: want a positive integer"},
		{"?per_page=ten", "per_page: want a positive integer"},
		{"?next_token=sim-00003/id00003", "next_token needs per_page"},
	} {
		if _, _, code, body := get(c.query); code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", c.query, code, body, c.want)
		}
	}
}

// TestPageNodesTies: nodes of one name (a down node and the live one that
// took its name) each get their own place, and a token whose node has
// gone still finds where it stood.
func TestPageNodesTies(t *testing.T) {
	nodes := func() []*api.Node {
		return []*api.Node{{Name: "a", ID: "1"}, {Name: "b", ID: "9"}, {Name: "b", ID: "2"}, {Name: "c", ID: "3"}}
	}
	for _, c := range []struct {
		name     string
		p        page
		wantIDs  string
		wantNext string
	}{
		{"all", page{}, "1 9 2 3", ""},
		{"first two", page{perPage: 2}, "1 2", "b/9"},
		{"tie in the next page", page{perPage: 2, next: "b/9"}, "9 3", ""},
		{"gone token", page{perPage: 2, next: "b/5"}, "9 3", ""},
		{"past the end", page{perPage: 2, next: "z/0"}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, next := c.p.nodes(nodes())
			var ids []string
			for _, n := range got {
				ids = append(ids, n.ID)
			}
			if strings.Join(ids, " ") != c.wantIDs || next != c.wantNext {
				t.Fatalf("got %v next %q, want %s next %q", ids, next, c.wantIDs, c.wantNext)
			}
		})
	}
}
