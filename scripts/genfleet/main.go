// Command genfleet writes a fleet file for benchmarks and load tests: a
// number of simulated servers on consecutive local ports and tenants with
// one instance each, spread evenly over them.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	servers := flag.Int("servers", 100, "servers, on consecutive ports from -port")
	instances := flag.Int("instances", 100000, "tenants, each with one instance")
	host := flag.String("host", "127.0.0.1", "the servers' address")
	port := flag.Int("port", 20000, "the first server's port")
	tokenEnv := flag.String("token-env", "SLUM_BENCH_TOKEN", "variable holding every server's token")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w, "version: 1\nservers:")
	for i := 0; i < *servers; i++ {
		fmt.Fprintf(w, "  - {id: s%d, url: 'http://%s:%d', capacity_mb: 10000000, token_env: %s}\n", i, *host, *port+i, *tokenEnv)
	}
	fmt.Fprintln(w, "tenants:")
	for i := 0; i < *instances; i++ {
		fmt.Fprintf(w, "  - id: t%d\n    domain: t%d.example.com\n    instances: [{id: prod, process: api, server: s%d, memory_mb: 1}]\n", i, i, i%*servers)
	}
}
