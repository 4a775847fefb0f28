package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ark-sched/ark/scheduler/api"
)

// ark acl: bootstrap, policies and tokens of the ACL state (Raft). Every
// command but bootstrap needs a management token; bootstrap needs the
// token file's management token and works once.
func init() {
	extraCommands = append(extraCommands, func(g *globals) *cobra.Command {
		cmd := &cobra.Command{Use: "acl", Short: "Manage access control: bootstrap, policies and tokens"}
		cmd.AddCommand(newACLBootstrapCmd(g), newACLPolicyCmd(g), newACLTokenCmd(g))
		return cmd
	})
}

func newACLBootstrapCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the first management token (works once; its secret is shown only now)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			tok, err := c.ACLBootstrap(cmd.Context())
			if err != nil {
				return err
			}
			return printToken(cmd.OutOrStdout(), g, tok)
		},
	}
}

func newACLPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Manage ACL policies (what tokens may do, per namespace)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "apply NAME FILE",
		Short: "Create or replace a policy from a YAML or JSON file (- reads stdin)",
		Args:  exactArgs(2, "NAME and FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var doc []byte
			var err error
			if args[1] == "-" {
				doc, err = io.ReadAll(cmd.InOrStdin())
			} else {
				doc, err = os.ReadFile(args[1])
			}
			if err != nil {
				return usagef("policy file: %v", err)
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			p, err := c.ACLPolicyApply(cmd.Context(), args[0], doc)
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %s applied (index %d)\n", p.Name, p.ModifyIndex)
			return nil
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List policies",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			ps, err := c.ACLPolicies(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ps)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tNAMESPACES\tDESCRIPTION")
			for _, p := range ps {
				ns := make([]string, len(p.Namespaces))
				for i, r := range p.Namespaces {
					ns[i] = r.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, strings.Join(ns, ","), p.Description)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "show NAME",
		Short: "Show a policy (JSON)",
		Args:  exactArgs(1, "a policy name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			p, err := c.ACLPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), p)
		},
	}, &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy (tokens that name it lose what it granted)",
		Args:  exactArgs(1, "a policy name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			if err := c.ACLPolicyDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %s deleted\n", args[0])
			return nil
		},
	})
	return cmd
}

func newACLTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage ACL tokens"}
	var (
		policies   []string
		ttl        time.Duration
		name       string
		management bool
	)
	create := &cobra.Command{
		Use:   "create --policy P... [--ttl D] [--management]",
		Short: "Create a token; its secret is shown only now",
		Args:  exactArgs(0, "no arguments (policies with --policy)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.ACLTokenRequest{Name: name, Policies: policies, Type: api.ACLClientToken}
			if management {
				req.Type = api.ACLManagementToken
			}
			if ttl < 0 {
				return usagef("--ttl must not be negative")
			}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			tok, err := c.ACLTokenCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printToken(cmd.OutOrStdout(), g, tok)
		},
	}
	create.Flags().StringSliceVar(&policies, "policy", nil, "a policy the token carries (repeat, or comma-separated)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "the token expires after this long (0: never)")
	create.Flags().StringVar(&name, "name", "", "a name to recognise the token by")
	create.Flags().BoolVar(&management, "management", false, "a management token: may do everything (no policies)")
	cmd.AddCommand(create, &cobra.Command{
		Use:   "list",
		Short: "List tokens (accessor IDs, never secrets)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			ts, err := c.ACLTokens(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), ts)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ACCESSOR\tNAME\tTYPE\tPOLICIES\tEXPIRES")
			for _, t := range ts {
				exp := "never"
				if t.ExpirationTime != nil {
					exp = t.ExpirationTime.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.AccessorID, t.Name, t.Type, strings.Join(t.Policies, ","), exp)
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "delete ACCESSOR",
		Short: "Delete a token: it stops working at once",
		Args:  exactArgs(1, "an accessor ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return usageError{err}
			}
			if err := c.ACLTokenDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return printJSON(cmd.OutOrStdout(), map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s deleted\n", args[0])
			return nil
		},
	})
	return cmd
}

// printToken shows a new token with its secret, which is never shown again.
func printToken(w io.Writer, g *globals, t *api.ACLToken) error {
	if g.json() {
		return printJSON(w, t)
	}
	fmt.Fprintf(w, "Accessor ID  %s\n", t.AccessorID)
	fmt.Fprintf(w, "Secret ID    %s\n", t.SecretID)
	fmt.Fprintf(w, "Type         %s\n", t.Type)
	if len(t.Policies) > 0 {
		fmt.Fprintf(w, "Policies     %s\n", strings.Join(t.Policies, ", "))
	}
	if t.ExpirationTime != nil {
		fmt.Fprintf(w, "Expires      %s\n", t.ExpirationTime.Format(time.RFC3339))
	}
	fmt.Fprintln(w, "The secret is shown only now: use it as --token or ARK_TOKEN.")
	return nil
}
