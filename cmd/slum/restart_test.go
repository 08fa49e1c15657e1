package main

import (
	"testing"
)

// restart and rebalance: bad input is refused with its exit code and
// changes nothing; the dry run says the order; the plan says why a server
// takes nothing; both work the same through the API.
func TestRestartAndRebalanceCommands(t *testing.T) { bothWays(t, testRestartAndRebalanceCommands) }

func testRestartAndRebalanceCommands(t *testing.T) {
	_, db := newFleet(t)
	expect(t, cli(t, db, "", "instance", "spawn", "alice:backup", "--process", "api"), 0, "", "")
	rejected(t, db, "", 3, "name exactly one of a tenant, --server or --all", "restart")
	rejected(t, db, "", 3, "name exactly one of a tenant, --server or --all", "restart", "alice", "--all")
	rejected(t, db, "", 3, `--parallel "0": must be at least 1`, "restart", "--all", "--parallel", "0")
	rejected(t, db, "", 3, `tenant id "Bad_Id"`, "restart", "Bad_Id")
	rejected(t, db, "", 4, "restart tenant nobody: not found: no running copy", "restart", "nobody", "--dry-run")
	rejected(t, db, "", 4, "not found", "restart", "--status")
	rejected(t, db, "", 4, "no rollout is unfinished", "restart", "--resume")
	rejected(t, db, "", 2, "--resume, --abandon and --status go alone", "restart", "alice", "--resume")
	r := cli(t, db, "", "restart", "alice", "--dry-run")
	expect(t, r, 0, "alice:backup", "")
	expect(t, cli(t, db, "", "-o", "json", "restart", "--server", "s1", "--dry-run"), 0, `"instance": "alice:prod"`, "")

	rejected(t, db, "", 3, `--max-moves "0": must be between 1 and 10000`, "rebalance", "--max-moves", "0")
	expect(t, cli(t, db, "", "rebalance"), 0, "no: it is not probed yet", "")
	expect(t, cli(t, db, "", "-o", "json", "rebalance"), 0, `"moves": []`, "")
	for _, help := range [][]string{{"restart", "--help"}, {"rebalance", "--help"}} {
		expect(t, cli(t, db, "", help...), 0, "Usage:", "")
	}
}
