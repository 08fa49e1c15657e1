// Package experiment measures what a failure costs a slum fleet. It owns
// failover experiments end to end: fault injection on a local fleet (kill -9,
// a hang, a cut link, a tenement restart, a controller killed mid-failover,
// a partition of most servers; on Postgres, the leading one of two
// controllers killed or cut off), steady HTTP load through slum's router at
// every tenant, the observation of the controller's view (the fleet
// database) and tenement's own (its instance lists), the measurement of each
// trial from the experiment's own clock, the results (a table of p50, p99
// and max over trials, JSON with every raw figure) and the pictures (a
// timeline per trial and the distribution over trials).
//
// The controller and router under test are started by a Launcher that the
// command line wires to the same stack 'slum run' runs, so what an
// experiment measures is what users run. Observe records the same figures
// against an existing fleet while an operator causes the fault.
package experiment
