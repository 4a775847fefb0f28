package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newNamespaceKeyCmd is `ark operator namespace-key`: the namespaces'
// checkpoint data keys (see scheduler/server/keys.go).
func newNamespaceKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "namespace-key", Short: "Manage the namespaces' checkpoint encryption keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "delete NAMESPACE",
		Short: "Delete a namespace's checkpoint key: every checkpoint it sealed becomes unreadable for good (the namespace's next job gets a new key)",
		Args:  exactArgs(1, "a namespace"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			out, err := c.DeleteNamespaceKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted checkpoint key %s of namespace %s: its checkpoints can no longer be read\n", out.KeyID, out.Namespace)
			return nil
		},
	})
	return cmd
}
