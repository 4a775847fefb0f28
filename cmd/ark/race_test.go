//go:build race

package main

// raceEnabled: the test binary is built with -race, so TestMain builds the
// ark processes the system tests start with -race too.
const raceEnabled = true
