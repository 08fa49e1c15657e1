package experiment

import (
	"fmt"
	"slices"
	"strings"
)

// Fault is a failure an experiment injects.
type Fault string

const (
	// FaultKill kills one tenement server with SIGKILL; it is launched
	// again once the fleet has recovered (and then kills its leftovers).
	FaultKill Fault = "kill"
	// FaultHang stops one tenement server with SIGSTOP (it accepts
	// connections and answers nothing), then resumes it with SIGCONT.
	FaultHang Fault = "hang"
	// FaultCut cuts one server's network link (packets are dropped, as over
	// a cut cable), then restores it. Its instances keep running.
	FaultCut Fault = "cut"
	// FaultRestart restarts one tenement server, which loses every
	// instance it ran.
	FaultRestart Fault = "restart"
	// FaultControllerKill kills one tenement server and then, once the
	// controller has started failing it over, kills the controller with
	// SIGKILL and starts another.
	FaultControllerKill Fault = "controller-kill"
	// FaultPartition cuts the links of most servers at once: the
	// controller must assume it is the one cut off and move nothing.
	FaultPartition Fault = "partition"
	// FaultLeaderKill runs two controllers on a Postgres fleet, one
	// leading and one standing by, and kills the leader with SIGKILL: the
	// standby must take over while the routers keep serving.
	FaultLeaderKill Fault = "leader-kill"
	// FaultLeaderCut is FaultLeaderKill with the leader's host cut off
	// instead (the network link of its namespace down), then restored: it
	// must rejoin as a standby.
	FaultLeaderCut Fault = "leader-cut"
	// FaultObserved is a fault an operator caused on an existing fleet,
	// seen by Observe.
	FaultObserved Fault = "observed"
)

// Faults lists every fault on one controller, in the order experiments
// run them ("all").
var Faults = []Fault{FaultKill, FaultHang, FaultCut, FaultRestart, FaultControllerKill, FaultPartition}

// LeaderFaults are the faults on several controllers over Postgres: they
// need a Postgres database and are not part of "all".
var LeaderFaults = []Fault{FaultLeaderKill, FaultLeaderCut}

// NeedsPostgres reports whether the fault runs several controllers over
// one Postgres database.
func (f Fault) NeedsPostgres() bool { return f == FaultLeaderKill || f == FaultLeaderCut }

// Title says what the fault is, for tables and pictures.
func (f Fault) Title() string {
	switch f {
	case FaultKill:
		return "kill -9 of a tenement server"
	case FaultHang:
		return "hung tenement server (SIGSTOP)"
	case FaultCut:
		return "cut network link"
	case FaultRestart:
		return "tenement restart (loses every instance)"
	case FaultControllerKill:
		return "kill -9 of a server, then of the controller mid-failover"
	case FaultPartition:
		return "partition: most servers cut off at once"
	case FaultLeaderKill:
		return "kill -9 of the leading controller (Postgres, one standby)"
	case FaultLeaderCut:
		return "the leading controller's host cut off (Postgres, one standby)"
	case FaultObserved:
		return "a fault caused by the operator, observed"
	}
	return string(f)
}

// Moves reports whether the fault should make instances move to other
// servers (a partition must move nothing; a restart brings them back
// wherever the controller places them).
func (f Fault) Moves() bool {
	return f == FaultKill || f == FaultHang || f == FaultCut || f == FaultControllerKill
}

// ParseFaults reads a comma-separated list of faults, or "all".
func ParseFaults(s string) ([]Fault, error) {
	s = strings.TrimSpace(s)
	if s == "all" {
		return append([]Fault(nil), Faults...), nil
	}
	var out []Fault
	seen := map[Fault]bool{}
	for _, part := range strings.Split(s, ",") {
		f := Fault(strings.TrimSpace(part))
		known := slices.Contains(Faults, f) || slices.Contains(LeaderFaults, f)
		if !known {
			var names []string
			for _, k := range append(append([]Fault(nil), Faults...), LeaderFaults...) {
				names = append(names, string(k))
			}
			return nil, fmt.Errorf("unknown fault %q: choose from %s, or all", part, strings.Join(names, ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}
