// Command testsummary reads `go test -json` on standard input, prints what a
// plain `go test` prints (ok and FAIL lines, the output of failing tests)
// and closes with a summary: packages, tests run, failed, and every skipped
// test with its reason. With -allow FILE it checks each skip against an
// allow-list of patterns; with -strict (CI) a skip the list does not excuse
// fails the run, so a test that silently stops running cannot hide behind
// a green result.
//
//	go test -json ./... | go run ./internal/testsummary -allow .ci/allowed-skips -strict
//
// Exit status: 0 when everything passed, 1 when a test or a package failed
// or (with -strict) a skip is not allowed, 2 on bad usage or input.
package main
