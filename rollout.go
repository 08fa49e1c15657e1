package slum

import (
	"context"
	"fmt"
	"time"
)

// RestartSpec says which copies a rolling restart restarts: a tenant's
// (with Process, only those of that process), a server's, or All.
type RestartSpec struct {
	Tenant  string `json:"tenant,omitempty"`
	Process string `json:"process,omitempty"`
	Server  string `json:"server,omitempty"`
	All     bool   `json:"all,omitempty"`
	// Parallel copies are restarted at once (never two of one tenant); 0: 1.
	Parallel int `json:"parallel,omitempty"`
	// Timeout is how long a copy has to be healthy again; 0: DefaultRestartTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// DryRun only says the order.
	DryRun bool `json:"dry_run,omitempty"`
}

// DefaultRestartTimeout is how long a restarted copy has to be reported
// healthy again: tenement's longest backoff (a minute) and a start.
const DefaultRestartTimeout = 90 * time.Second

// MaxParallel bounds RestartSpec.Parallel.
const MaxParallel = 100

// Validate checks the spec's shape (that what it names exists is the
// fleet's to say).
func (r RestartSpec) Validate() error {
	named := 0
	if r.Tenant != "" {
		named++
	}
	if r.Server != "" {
		named++
	}
	if r.All {
		named++
	}
	switch {
	case named != 1:
		return invalid("restart", r.String(), "name exactly one of a tenant, --server or --all")
	case r.Process != "" && r.Tenant == "" && !r.All && r.Server == "":
		return invalid("process", r.Process, "needs a tenant, --server or --all")
	case r.Parallel < 0 || r.Parallel > MaxParallel:
		return invalid("parallel", fmt.Sprint(r.Parallel), fmt.Sprintf("must be between 1 and %d", MaxParallel))
	case r.Timeout < 0 || r.Timeout > time.Hour:
		return invalid("timeout", r.Timeout.String(), "must be between 1s and 1h")
	}
	return nil
}

func (r RestartSpec) String() string {
	what := "every copy"
	switch {
	case r.Tenant != "":
		what = "tenant " + r.Tenant
	case r.Server != "":
		what = "the copies on " + r.Server
	}
	if r.Process != "" {
		what += " (process " + r.Process + ")"
	}
	return what
}

// RolloutState is where a rolling restart is.
type RolloutState string

const (
	// RolloutRunning: under way, or interrupted (its runner's heartbeat
	// stopped: another may resume it).
	RolloutRunning   RolloutState = "running"
	RolloutDone      RolloutState = "done"
	RolloutFailed    RolloutState = "failed"    // halted on a copy that did not come back healthy
	RolloutAbandoned RolloutState = "abandoned" // given up by an operator; the rest untouched
)

// Finished reports whether nothing more will happen to the rollout.
func (s RolloutState) Finished() bool { return s != RolloutRunning }

// StepState is where one copy of a rollout is.
type StepState string

const (
	StepPending    StepState = "pending"
	StepRestarting StepState = "restarting" // its serving moved off, restart asked or waiting for health
	StepDone       StepState = "done"
	StepFailed     StepState = "failed"
	// StepSkipped: the copy was gone (removed, moved, stopped) by its turn.
	StepSkipped StepState = "skipped"
)

// RolloutStep is one copy of a rollout, in the order they are restarted.
type RolloutStep struct {
	Instance InstanceKey `json:"instance"`
	Server   string      `json:"server"`
	State    StepState   `json:"state"`
	// Serving: the copy served when the rollout was planned, so its turn
	// comes after its tenant's other copies.
	Serving    bool      `json:"serving,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Message    string    `json:"message,omitempty"`
}

// Rollout is a rolling restart, as the fleet keeps it: resumable from its
// steps after an interruption.
type Rollout struct {
	ID      int64         `json:"id"`
	Spec    RestartSpec   `json:"spec"`
	State   RolloutState  `json:"state"`
	Steps   []RolloutStep `json:"steps"`
	Message string        `json:"message,omitempty"`
	// Runner is who runs it now; Heartbeat when it last said so.
	Runner    string    `json:"runner,omitempty"`
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Counts says how many steps are in each state.
func (r Rollout) Counts() map[StepState]int {
	n := map[StepState]int{}
	for _, s := range r.Steps {
		n[s.State]++
	}
	return n
}

// Restarting are the copies being restarted now.
func (r Rollout) Restarting() []InstanceKey {
	var out []InstanceKey
	for _, s := range r.Steps {
		if s.State == StepRestarting {
			out = append(out, s.Instance)
		}
	}
	return out
}

// RolloutRef names a rollout.
func RolloutRef(id int64) ObjectRef { return ObjectRef(fmt.Sprintf("rollout/%d", id)) }

// Reasons of rolling restarts.
const (
	ReasonRolloutStarted EventReason = "RolloutStarted"
	ReasonRestarted      EventReason = "Restarted"
	ReasonRestartFailed  EventReason = "RestartFailed"
	ReasonRolloutDone    EventReason = "RolloutDone"
)

// RolloutStale is how long a rollout's runner may go without a heartbeat
// before another may resume it.
const RolloutStale = 15 * time.Second

// Restarts are rolling restarts, as the CLI drives them locally (the
// restarts run in its process) or through the API (they run in the API's,
// with the server tokens, which never leave it). Restart and
// ResumeRollout start the work in the background and return at once;
// GetRollout follows it.
type Restarts interface {
	// Restart plans a rolling restart and starts it (with DryRun, only
	// plans it). ErrConflict while another is unfinished.
	Restart(ctx context.Context, spec RestartSpec) (Rollout, error)
	// ResumeRollout goes on with an interrupted rollout (id 0: the
	// latest unfinished); ErrConflict while its runner is alive.
	ResumeRollout(ctx context.Context, id int64) (Rollout, error)
	// AbandonRollout gives an unfinished rollout up; copies not yet
	// restarted stay untouched.
	AbandonRollout(ctx context.Context, id int64) (Rollout, error)
	GetRollout(ctx context.Context, id int64) (Rollout, error)
	ListRollouts(ctx context.Context, n int64) ([]Rollout, error)
}
