package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/observed/sim"
)

func (a *app) simCommand() *cobra.Command {
	var listen, tokenFile, tokenEnv string
	var processes []string
	var idle time.Duration
	var idleProcesses []string
	var count int
	cmd := &cobra.Command{
		Use:   "sim --listen ADDR (--token-file F | --token-env V) [--process api ...]",
		Short: "Run a simulated tenement server (for demos and tests; not a tenement)",
		Long: `Sim serves tenement's HTTP API with the behaviour slum relies on: spawn,
stop, list, the 429 lock-out after repeated bad tokens, and idle reaping for
--idle-process services. It runs no real processes. The admin token is
read from --token-file, which is created (0600) with a new token when
missing, or from the environment variable --token-env names.`,
		Example: `  export SLUM_TOKEN_EU_1=sim-token-1
  slum sim --listen 127.0.0.1:18081 --token-env SLUM_TOKEN_EU_1`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			var token string
			var err error
			switch {
			case (tokenFile == "") == (tokenEnv == ""):
				return usageError{fmt.Errorf("give the simulated server's admin token with --token-file or --token-env (one of them)")}
			case tokenEnv != "":
				v, ok := a.lookupEnv(tokenEnv)
				if token = strings.TrimSpace(v); !ok || token == "" {
					return &slum.FieldError{Field: "--token-env", Value: tokenEnv, Reason: fmt.Sprintf("environment variable is not set or empty: export %s=<a token> first", tokenEnv)}
				}
			default:
				if token, err = simToken(tokenFile); err != nil {
					return err
				}
			}
			cfg := sim.Config{Token: token, Processes: map[string]sim.Process{}}
			for _, p := range processes {
				cfg.Processes[p] = sim.Process{}
			}
			for _, p := range idleProcesses {
				cfg.Processes[p] = sim.Process{IdleTimeout: idle}
			}
			if count < 1 {
				return usageError{fmt.Errorf("--count must be at least 1")}
			}
			host, portText, err := net.SplitHostPort(listen)
			if err != nil {
				return usageError{fmt.Errorf("--listen %q: %v", listen, err)}
			}
			port, err := strconv.Atoi(portText)
			if err != nil || (count > 1 && port == 0) {
				return usageError{fmt.Errorf("--listen %q: give a numeric port (and not 0 with --count)", listen)}
			}
			var sims []*sim.Server
			defer func() {
				for _, s := range sims {
					s.Close()
				}
			}()
			for i := 0; i < count; i++ {
				s := sim.New(cfg)
				url, err := s.Start(net.JoinHostPort(host, strconv.Itoa(port+i)))
				if err != nil {
					return fmt.Errorf("sim: %w", err)
				}
				sims = append(sims, s)
				fmt.Fprintf(a.stderr, "simulated tenement on %s (processes: %s)\n", url, strings.Join(append(processes, idleProcesses...), ", "))
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "the admin token's file (created when missing)")
	cmd.Flags().StringVar(&tokenEnv, "token-env", "", "the environment variable holding the admin token")
	cmd.Flags().StringSliceVar(&processes, "process", []string{"api"}, "services of the simulated tenement.toml")
	cmd.Flags().StringSliceVar(&idleProcesses, "idle-process", nil, "services that scale to zero after --idle-timeout")
	cmd.Flags().DurationVar(&idle, "idle-timeout", 30*time.Second, "idle timeout of --idle-process services")
	cmd.Flags().IntVar(&count, "count", 1, "run this many simulators, on consecutive ports from --listen's")
	return cmd
}

// simToken reads a token file, or creates one 0600 with a random token.
func simToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", &slum.FieldError{Field: "--token-file", Value: path, Reason: "is empty; remove it to have a token made, or put one in it"}
		}
		return tok, nil
	}
	if !os.IsNotExist(err) {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token file: %w", err)
	}
	return tok, nil
}
