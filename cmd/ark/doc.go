// Command ark is Ark's one binary: the server, the node agent, dev mode,
// and the client commands for jobs, nodes and benchmarks. main only parses
// flags and wires components in a straight line; the work is done by the
// scheduler, worker and library packages.
//
// Exit codes: 0 success, 1 failure, 2 usage or invalid input.
package main
