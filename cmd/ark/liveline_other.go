//go:build !unix

package main

import "io"

// terminalWidth is 80 columns where the terminal cannot be asked.
func terminalWidth(io.Writer) int { return 80 }
