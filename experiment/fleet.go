package experiment

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/localfleet"
)

// DefaultFleet is the built-in fleet file: servers s1…sN and tenants
// t01…tT, each tenant's prod copy on the next server in turn; every other
// tenant also has a backup copy (a warm spare) on the server after that.
// The servers' URLs, domains and tokens are placeholders until localfleet.PointAt.
func DefaultFleet(servers, tenants int) (*desired.File, error) {
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n")
	for i := 1; i <= servers; i++ {
		fmt.Fprintf(&b, "  - {id: s%d, url: \"http://127.0.0.1:%d\", capacity_mb: 65536, no_token: true}\n", i, 18080+i)
	}
	b.WriteString("tenants:\n")
	for i := 0; i < tenants; i++ {
		id := fmt.Sprintf("t%02d", i+1)
		fmt.Fprintf(&b, "  - id: %s\n    domain: %s.experiment.test\n    instances:\n", id, id)
		fmt.Fprintf(&b, "      - {id: prod, process: api, server: s%d, memory_mb: 64}\n", i%servers+1)
		if i%2 == 0 && servers > 1 {
			fmt.Fprintf(&b, "      - {id: backup, process: api, server: s%d, memory_mb: 64}\n", (i+1)%servers+1)
		}
	}
	return desired.Parse("built-in experiment fleet", []byte(b.String()))
}

// Processes lists the processes f's instances use: the services every
// local tenement server must offer.
func Processes(f *desired.File) []localfleet.Service {
	seen := map[string]bool{}
	var out []localfleet.Service
	for _, t := range f.Tenants {
		for _, in := range t.Instances {
			if !seen[in.Process] {
				seen[in.Process] = true
				out = append(out, localfleet.Service{Name: in.Process})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// reset brings every server of the fleet back clean: links up, processes
// resumed, and restarted (a restarted tenement kills whatever its last
// run left, and has no instances).
func reset(ctx context.Context, fleet *localfleet.Fleet) error {
	var wg sync.WaitGroup
	errs := make([]error, len(fleet.Members))
	for i, m := range fleet.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.Sim != nil {
				m.Sim.SetHang(false)
				errs[i] = m.Sim.SetDown(false)
				m.Sim.Crash()
				return
			}
			_ = m.Host.SetLink(true)
			if m.Ten.Running() {
				_ = m.Ten.Signal(syscall.SIGCONT)
				errs[i] = m.Ten.Restart(ctx)
			} else {
				errs[i] = m.Ten.Launch(ctx)
			}
			if errs[i] != nil {
				errs[i] = fmt.Errorf("restart server %s: %w", m.ID, errs[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// inject causes fault f on one server.
func inject(ctx context.Context, f Fault, m *localfleet.Member) error {
	if m.Sim != nil {
		switch f {
		case FaultKill, FaultWholeKill, FaultControllerKill:
			return m.Sim.Kill()
		case FaultHang, FaultCut, FaultPartition:
			// The simulator cannot cut a link: it hangs, which is what a
			// cut link looks like to its clients (no answer, timeouts).
			m.Sim.SetHang(true)
		case FaultRestart:
			m.Sim.Crash()
		}
		return nil
	}
	switch f {
	case FaultKill, FaultControllerKill:
		m.Ten.Kill()
	case FaultWholeKill:
		localfleet.KillAll(m.Host.Netns)
		m.Ten.Kill()
	case FaultHang:
		return m.Ten.Signal(syscall.SIGSTOP)
	case FaultCut, FaultPartition:
		return m.Host.SetLink(false)
	case FaultRestart:
		return m.Ten.Restart(ctx)
	}
	return nil
}

// heal undoes fault f on one server.
func heal(ctx context.Context, f Fault, m *localfleet.Member) error {
	if m.Sim != nil {
		switch f {
		case FaultKill, FaultWholeKill, FaultControllerKill:
			return m.Sim.SetDown(false)
		case FaultHang, FaultCut, FaultPartition:
			m.Sim.SetHang(false)
		}
		return nil
	}
	switch f {
	case FaultKill, FaultWholeKill, FaultControllerKill:
		if !m.Ten.Running() {
			return m.Ten.Launch(ctx)
		}
	case FaultHang:
		return m.Ten.Signal(syscall.SIGCONT)
	case FaultCut, FaultPartition:
		return m.Host.SetLink(true)
	}
	return nil
}

// processesIn counts the processes left in a server's network namespace:
// a killed tenement's instances outlive it until it starts again.
func processesIn(m *localfleet.Member) (int, error) {
	if m.Host == nil {
		return 0, nil
	}
	out, err := exec.Command("ip", "netns", "pids", m.Host.Netns).Output()
	if err != nil {
		return 0, fmt.Errorf("ip netns pids %s: %w", m.Host.Netns, err)
	}
	return len(strings.Fields(string(out))), nil
}

// namespacesLeft lists the fleet's network namespaces that still exist.
func namespacesLeft(fleet *localfleet.Fleet) []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	have := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			have[f[0]] = true
		}
	}
	var left []string
	for _, m := range fleet.Members {
		if m.Host != nil && have[m.Host.Netns] {
			left = append(left, "network namespace "+m.Host.Netns)
		}
	}
	return left
}

// Marker marks a directory as an experiment's own, so that a rerun may
// wipe it and nothing else.
const Marker = ".slum-experiment"

// PrepareDir makes dir an empty experiment directory. It refuses a
// directory with files that an experiment did not make.
func PrepareDir(dir string) error {
	return localfleet.PrepareDir(dir, localfleet.DirMarker{File: Marker, What: "an experiment's directory", Flag: "--out",
		Note: "made by slum experiment; rerunning it with this --out wipes this directory\n"})
}
