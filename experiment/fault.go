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
	// FaultWholeKill kills every process of one server's network
	// namespace with SIGKILL, tenement and its instances alike: the whole
	// machine dies. Its tenement is launched again once the fleet has
	// recovered.
	FaultWholeKill Fault = "whole-kill"
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

// Faults lists the faults on one controller that "all" runs, in order
// (FaultWholeKill, made for data experiments, is asked for by name).
var Faults = []Fault{FaultKill, FaultHang, FaultCut, FaultRestart, FaultControllerKill, FaultPartition}

// DataFaults are the faults a data experiment (RunData) runs, in its
// order ("all" with --data). Each hits the server the replicated tenant is
// served from.
var DataFaults = []Fault{FaultWholeKill, FaultKill, FaultHang, FaultCut, FaultControllerKill}

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
	case FaultWholeKill:
		return "the whole server dies (every process of its namespace killed)"
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
	return f == FaultKill || f == FaultWholeKill || f == FaultHang || f == FaultCut || f == FaultControllerKill
}

// OrphansLive reports whether the fault leaves the hit server's instances
// running (a dead tenement's instances outlive it; a hung or cut-off one's
// keep running): the old copy of a replicated tenant lives on and may try
// to write.
func (f Fault) OrphansLive() bool {
	return f == FaultKill || f == FaultHang || f == FaultCut || f == FaultControllerKill
}

// ParseFaults reads a comma-separated list of faults, or "all".
func ParseFaults(s string) ([]Fault, error) {
	known := append(append([]Fault(nil), Faults...), FaultWholeKill)
	return parseFaults(s, Faults, append(known, LeaderFaults...), "")
}

// ParseDataFaults reads a comma-separated list of a data experiment's
// faults (DataFaults), or "all".
func ParseDataFaults(s string) ([]Fault, error) {
	return parseFaults(s, DataFaults, DataFaults, " with --data")
}

func parseFaults(s string, all, known []Fault, mode string) ([]Fault, error) {
	s = strings.TrimSpace(s)
	if s == "all" {
		return append([]Fault(nil), all...), nil
	}
	var out []Fault
	seen := map[Fault]bool{}
	for _, part := range strings.Split(s, ",") {
		f := Fault(strings.TrimSpace(part))
		if !slices.Contains(known, f) {
			var names []string
			for _, k := range known {
				names = append(names, string(k))
			}
			return nil, fmt.Errorf("unknown fault %q%s: choose from %s, or all", part, mode, strings.Join(names, ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}
