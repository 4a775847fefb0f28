package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ark-sched/ark/internal/pki"
)

// addTLSFlags adds --tls-ca, --tls-cert and --tls-key, with the
// ARK_TLS_* variables as defaults. Every command takes them: clients
// (where the certificate is optional), servers and agents (where it is
// required).
func addTLSFlags(fs *pflag.FlagSet, f *pki.Files) {
	fs.StringVar(&f.CA, "tls-ca", os.Getenv("ARK_TLS_CA"), "PEM file of the cluster CA: speak HTTPS (and, for servers, Raft over mutual TLS) (env ARK_TLS_CA)")
	fs.StringVar(&f.Cert, "tls-cert", os.Getenv("ARK_TLS_CERT"), "PEM certificate signed by the cluster CA (env ARK_TLS_CERT)")
	fs.StringVar(&f.Key, "tls-key", os.Getenv("ARK_TLS_KEY"), "PEM private key of --tls-cert, mode 0600 (env ARK_TLS_KEY)")
}

// identity loads the TLS files; nil when none is given. Servers and agents
// (needCert) must present a certificate.
func (g *globals) identity(needCert bool) (*pki.Identity, error) {
	if !g.tls.Enabled() {
		return nil, nil
	}
	if err := g.tls.Check(needCert); err != nil {
		return nil, usageError{err}
	}
	id, err := pki.Load(g.tls)
	if err != nil {
		return nil, usageError{err}
	}
	return id, nil
}

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Create the cluster CA and the certificates of servers, agents and CLI users",
		Long: `Servers, agents and CLI users prove who they are with certificates signed by
the cluster's CA. Server certificates name server.ark (checked by every
peer, whatever address it dialled), agent certificates agent.ark, CLI
certificates cli.ark. Keep ark-ca-key.pem offline once the certificates are
made.`,
	}
	ca := &cobra.Command{Use: "ca", Short: "Manage the cluster CA"}
	var caOut string
	caCreate := &cobra.Command{
		Use:   "create",
		Short: "Create a CA: DIR/ark-ca.pem and DIR/ark-ca-key.pem (0600)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pki.CreateCA(caOut)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA written to %s (key %s, keep it offline)\n", p, filepath.Join(caOut, pki.CAKeyFile))
			return nil
		},
	}
	caCreate.Flags().StringVar(&caOut, "out", ".", "directory to write the CA to")
	ca.AddCommand(caCreate)

	cert := &cobra.Command{Use: "cert", Short: "Manage certificates"}
	var (
		caDir, name, out      string
		server, agent, client bool
	)
	certCreate := &cobra.Command{
		Use:   "create",
		Short: "Create a certificate signed by the CA: DIR/NAME.pem and DIR/NAME-key.pem (0600)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var role pki.Role
			n := 0
			for _, r := range []struct {
				set  bool
				role pki.Role
			}{{server, pki.RoleServer}, {agent, pki.RoleAgent}, {client, pki.RoleCLI}} {
				if r.set {
					role, n = r.role, n+1
				}
			}
			if n != 1 {
				return usagef("give exactly one of --server, --agent, --cli")
			}
			if name == "" {
				return usagef("--name is required")
			}
			p, err := pki.CreateCert(caDir, role, name, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s certificate written to %s (key %s)\n", role, p, filepath.Join(out, name+"-key.pem"))
			return nil
		},
	}
	cf := certCreate.Flags()
	cf.StringVar(&caDir, "ca-dir", ".", "directory holding ark-ca.pem and ark-ca-key.pem")
	cf.BoolVar(&server, "server", false, "a server certificate (server.ark; server and client auth)")
	cf.BoolVar(&agent, "agent", false, "an agent certificate (agent.ark; client auth)")
	cf.BoolVar(&client, "cli", false, "a CLI user's certificate (cli.ark; client auth)")
	cf.StringVar(&name, "name", "", "name of the certificate (its common name and file name)")
	cf.StringVar(&out, "out", ".", "directory to write the certificate and key to")
	cert.AddCommand(certCreate)

	cmd.AddCommand(ca, cert)
	return cmd
}
