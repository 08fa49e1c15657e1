package slum

import (
	"fmt"
	"strconv"
	"time"
)

// FailbackPolicy says whether a failed-over instance returns home.
type FailbackPolicy string

const (
	// FailbackStay keeps it where it failed over to: nothing moves twice.
	FailbackStay FailbackPolicy = "stay"
	// FailbackReturn moves it back, make-before-break, once its home
	// server has been healthy for FailbackAfter.
	FailbackReturn FailbackPolicy = "return"
)

// Settings are the fleet's failure detection and failover settings.
type Settings struct {
	// ProbeInterval: how often each server's health endpoint is probed.
	ProbeInterval time.Duration `json:"probe_interval"`
	// ProbeTimeout: a probe without an answer by then has failed.
	ProbeTimeout time.Duration `json:"probe_timeout"`
	// DeadAfter failed probes in a row make a server dead.
	DeadAfter int `json:"dead_after"`
	// PartitionFraction: when more than this share of the servers is
	// dead at once (or every server of a region of two or more), the
	// controller assumes it is the one cut off and fails nothing over.
	PartitionFraction float64 `json:"partition_fraction"`
	// FailoverRate: at most this many servers are failed over a minute.
	FailoverRate int `json:"failover_rate"`
	// StableAfter: a server that died takes no failed-over or new
	// instances until it has been back this long.
	StableAfter time.Duration  `json:"stable_after"`
	Failback    FailbackPolicy `json:"failback"`
	// FailbackAfter: with failback "return", how long the home server
	// must be healthy before instances return.
	FailbackAfter time.Duration `json:"failback_after"`
	// Rebalance on: the controller evens out the fleet by itself, one
	// move at a time at most every RebalanceEvery, when nothing else moves.
	Rebalance      RebalancePolicy `json:"rebalance"`
	RebalanceEvery time.Duration   `json:"rebalance_every"`
}

// RebalancePolicy says whether the controller rebalances by itself.
type RebalancePolicy string

const (
	RebalanceOff RebalancePolicy = "off"
	RebalanceOn  RebalancePolicy = "on"
)

// DefaultSettings are a new fleet's settings: probe every second, dead
// after three misses.
func DefaultSettings() Settings {
	return Settings{ProbeInterval: time.Second, ProbeTimeout: 800 * time.Millisecond, DeadAfter: 3,
		PartitionFraction: 0.55, FailoverRate: 5, StableAfter: 30 * time.Second,
		Failback: FailbackStay, FailbackAfter: 5 * time.Minute, Rebalance: RebalanceOff, RebalanceEvery: 10 * time.Minute}
}

// Validate checks every setting.
func (s Settings) Validate() error {
	between := func(field string, d, lo, hi time.Duration) error {
		if d < lo || d > hi {
			return invalid(field, d.String(), fmt.Sprintf("must be between %s and %s", lo, hi))
		}
		return nil
	}
	if err := between("probe_interval", s.ProbeInterval, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if err := between("probe_timeout", s.ProbeTimeout, 50*time.Millisecond, time.Minute); err != nil {
		return err
	}
	if s.DeadAfter < 1 || s.DeadAfter > 100 {
		return invalid("dead_after", strconv.Itoa(s.DeadAfter), "must be between 1 and 100 probes")
	}
	if !(s.PartitionFraction > 0 && s.PartitionFraction <= 1) {
		return invalid("partition_fraction", strconv.FormatFloat(s.PartitionFraction, 'g', -1, 64), "must be more than 0 and at most 1")
	}
	if s.FailoverRate < 1 || s.FailoverRate > 10000 {
		return invalid("failover_rate", strconv.Itoa(s.FailoverRate), "must be between 1 and 10000 servers a minute")
	}
	if err := between("stable_after", s.StableAfter, 0, 24*time.Hour); err != nil {
		return err
	}
	switch s.Failback {
	case FailbackStay, FailbackReturn:
	default:
		return invalid("failback", string(s.Failback), "must be stay or return")
	}
	if err := between("failback_after", s.FailbackAfter, 0, 30*24*time.Hour); err != nil {
		return err
	}
	switch s.Rebalance {
	case RebalanceOff, RebalanceOn:
	default:
		return invalid("rebalance", string(s.Rebalance), "must be off or on")
	}
	return between("rebalance_every", s.RebalanceEvery, 10*time.Second, 7*24*time.Hour)
}

// Warnings lists settings that are valid but likely not what was meant.
func (s Settings) Warnings() []string {
	var out []string
	if s.ProbeTimeout > s.ProbeInterval {
		// A server's probes never overlap: the next starts once the last
		// has answered or timed out.
		out = append(out, fmt.Sprintf("probe_timeout %s is longer than probe_interval %s: a server's probes never overlap, "+
			"so one that hangs is found dead only after dead_after × probe_timeout (%s), not %s", s.ProbeTimeout, s.ProbeInterval,
			time.Duration(s.DeadAfter)*s.ProbeTimeout, time.Duration(s.DeadAfter)*s.ProbeInterval))
	}
	return out
}
