// Package api owns the wire types of Ark's HTTP API (jobs, allocations,
// nodes, errors) and the Go client that the CLI, the agents and the tests use
// to speak it. The state store keeps these same types: there is one struct
// per concept.
package api
