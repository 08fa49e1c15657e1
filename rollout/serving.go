package rollout

import (
	"context"
	"fmt"
	"slices"

	"github.com/slum-fleet/slum"
)

// servingOff waits, when in serves its tenant and another copy of the
// tenant could serve, until the controller has picked another (the step
// is marked restarting: the controller picks no copy being restarted to
// serve while another can). A copy no other could replace is restarted
// serving: its gap is its restart.
func (ru *run) servingOff(ctx context.Context, in slum.Instance) error {
	deadline := ru.cfg.Clock.Now().Add(ru.cfg.ServingTimeout)
	for moved := false; ; moved = true {
		ts, err := ru.st.TenantStatus(ctx, in.TenantID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(ts.Serving, func(c slum.CopyRef) bool { return c.Instance == in.ID }) {
			if moved && ru.cfg.Drain > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-ru.cfg.Clock.After(ru.cfg.Drain):
				}
			}
			return nil
		}
		other, err := ru.anotherCanServe(ctx, in)
		if err != nil || !other {
			return err
		}
		if !ru.cfg.Clock.Now().Before(deadline) {
			return fmt.Errorf("the controller did not move serving off it to another healthy copy within %s (is 'slum run' running?): not restarted", ru.cfg.ServingTimeout)
		}
		if err := ru.sleep(ctx); err != nil {
			return err
		}
	}
}

// anotherCanServe reports whether another copy of in's tenant runs
// healthy, not being restarted itself.
func (ru *run) anotherCanServe(ctx context.Context, in slum.Instance) (bool, error) {
	siblings, err := ru.st.ListInstancesOfTenant(ctx, in.TenantID)
	if err != nil {
		return false, err
	}
	ru.mu.Lock()
	restarting := ru.r.Restarting()
	ru.mu.Unlock()
	for _, sib := range siblings {
		if sib.ID == in.ID || sib.DesiredState != slum.StateRunning || slices.Contains(restarting, sib.Key()) {
			continue
		}
		st, err := ru.st.InstanceStatus(ctx, sib.Key())
		if err != nil {
			continue // not reported yet
		}
		if st.Phase == slum.PhaseRunning && st.Health.Serves() && st.ServerID == sib.ServerID {
			return true, nil
		}
	}
	return false, nil
}
