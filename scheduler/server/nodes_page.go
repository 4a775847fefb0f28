package server

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
)

// page is a list request's ?per_page= and ?next_token=, as Nomad's list
// endpoints take them: perPage 0 asks for the whole list (the answer
// before paging existed); otherwise the answer holds at most perPage
// items from the one next_token names on, and api.NextTokenHeader names
// the first item of the next page.
type page struct {
	perPage int
	next    string
}

func pageParams(r *http.Request) (page, error) {
	q := r.URL.Query()
	var p page
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return page{}, &httpError{http.StatusBadRequest, fmt.Errorf("query parameter per_page: want a positive integer, got %q", v)}
		}
		p.perPage = n
	}
	p.next = q.Get("next_token")
	if p.next != "" && p.perPage == 0 {
		return page{}, &httpError{http.StatusBadRequest, fmt.Errorf("query parameter next_token needs per_page")}
	}
	return p, nil
}

// nodeToken is a node's place in the list: its name, then its ID (names
// and IDs hold no slash), so that two nodes of one name (a down node and
// the live one that took its name) each have their own.
func nodeToken(n *api.Node) string { return n.Name + "/" + n.ID }

// nodes is the page of nodes (sorted by name) and the next page's token,
// "" after the last page.
func (p page) nodes(nodes []*api.Node) ([]*api.Node, string) {
	if p.perPage == 0 {
		return nodes, ""
	}
	// The state sorts by name only; equal names are ordered by ID here.
	sort.SliceStable(nodes, func(i, k int) bool {
		if nodes[i].Name != nodes[k].Name {
			return nodes[i].Name < nodes[k].Name
		}
		return nodes[i].ID < nodes[k].ID
	})
	start := 0
	if p.next != "" {
		start = sort.Search(len(nodes), func(i int) bool { return compareToken(nodes[i], p.next) >= 0 })
	}
	end := min(start+p.perPage, len(nodes))
	next := ""
	if end < len(nodes) {
		next = nodeToken(nodes[end])
	}
	return nodes[start:end], next
}

// compareToken orders a node against a token as the list orders nodes: a
// token of a node that has gone since still finds where it stood.
func compareToken(n *api.Node, tok string) int {
	name, id, _ := strings.Cut(tok, "/")
	if c := strings.Compare(n.Name, name); c != 0 {
		return c
	}
	return strings.Compare(n.ID, id)
}
