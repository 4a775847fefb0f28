package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/internal/audit"
)

// newAuditCmd is `ark operator audit verify FILE`: check a server's audit
// log (DATA-DIR/audit.log) offline, on a copy if need be.
func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check a server's audit log"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Verify the hash chain of an audit log (a server's DATA-DIR/audit.log): exit 1 at the first line removed, reordered or edited",
		Args:  exactArgs(1, "an audit log file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err != nil {
				return usagef("audit log: %v", err)
			}
			n, err := audit.VerifyFile(args[0])
			if err != nil {
				return fmt.Errorf("%s does not verify: %w", args[0], err)
			}
			if wantJSON(cmd) {
				return printJSON(cmd.OutOrStdout(), map[string]any{"file": args[0], "entries": n, "verified": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries, the chain verifies\n", args[0], n)
			return nil
		},
	})
	return cmd
}
