package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newExampleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "example", Short: "Small programs that example jobs run"}
	var timeout time.Duration
	rdv := &cobra.Command{
		Use:   "rendezvous",
		Short: "Print this rank's placement and check in with rank 0 over TCP (MASTER_ADDR:MASTER_PORT)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rendezvous(cmd.OutOrStdout(), timeout)
		},
	}
	rdv.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the other ranks")
	cmd.AddCommand(rdv, newExampleServiceCmd())
	return cmd
}

// rendezvous is the demo gang's task: rank 0 listens on the rendezvous
// point, every other rank connects and says hello, and rank 0 answers each
// once all have checked in.
func rendezvous(out io.Writer, timeout time.Duration) error {
	env := func(k string) (string, error) {
		v := os.Getenv(k)
		if v == "" {
			return "", fmt.Errorf("%s is not set: run this as an Ark task", k)
		}
		return v, nil
	}
	var vals [4]string
	for i, k := range []string{"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} {
		v, err := env(k)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	rank, err1 := strconv.Atoi(vals[0])
	world, err2 := strconv.Atoi(vals[1])
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("RANK and WORLD_SIZE must be integers: %w", err)
	}
	addr := net.JoinHostPort(vals[2], vals[3])
	node := os.Getenv("ARK_NODE_NAME")
	fmt.Fprintf(out, "rank %d of %d on node %s: GPUs %s, rendezvous at %s\n", rank, world, node, os.Getenv("CUDA_VISIBLE_DEVICES"), addr)
	deadline := time.Now().Add(timeout)
	if rank == 0 {
		return rendezvousMaster(out, addr, world, deadline)
	}
	var conn net.Conn
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn = c
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rank 0 at %s did not answer within %s: %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, "%d %s\n", rank, node); err != nil {
		return fmt.Errorf("say hello to rank 0: %w", err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read rank 0's answer: %w", err)
	}
	fmt.Fprintf(out, "rank %d: rank 0 says: %s", rank, reply)
	return nil
}

func rendezvousMaster(out io.Writer, addr string, world int, deadline time.Time) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on the rendezvous point: %w", err)
	}
	defer ln.Close()
	type peer struct {
		conn net.Conn
		rank int
		node string
	}
	var peers []peer
	sum := 0
	for len(peers) < world-1 {
		_ = ln.(*net.TCPListener).SetDeadline(deadline)
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("only %d of %d ranks checked in: %w", len(peers)+1, world, err)
		}
		_ = c.SetDeadline(deadline)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			c.Close()
			return fmt.Errorf("read hello: %w", err)
		}
		f := strings.Fields(line)
		r, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			c.Close()
			return fmt.Errorf("malformed hello %q", line)
		}
		fmt.Fprintf(out, "rank 0: rank %d checked in from node %s\n", r, f[1])
		peers = append(peers, peer{c, r, f[1]})
		sum += r
	}
	for _, p := range peers {
		fmt.Fprintf(p.conn, "welcome rank %d: all %d ranks checked in (sum of ranks %d)\n", p.rank, world, sum)
		p.conn.Close()
	}
	fmt.Fprintf(out, "rank 0: all %d ranks checked in; sum of ranks %d\n", world, sum)
	return nil
}
