// Package driver runs tasks on a node. A Driver starts a task from its
// allocation's task spec and environment and returns a Handle to wait on or
// stop it. The exec driver runs any command (torchrun, a script, a binary)
// as a real process in its own process group, with stdout and stderr in
// files; the builtin driver (Ark's trainer) lands with its own issue.
package driver
