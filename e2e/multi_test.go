package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/pgtest"
	"github.com/slum-fleet/slum/localfleet"
	"github.com/slum-fleet/slum/postgres"
	"github.com/slum-fleet/slum/store"
)

// multiPort is the test's Postgres port, on the hosts' ends of the
// controllers' links only.
const multiPort = 25432

// controller is one 'slum run' in a network namespace of its own.
type controller struct {
	name string
	host *localfleet.Host
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// pid is the controller's process id, which its lease holder names
// (ip netns exec runs slum in its own process).
func (c *controller) pid() string { return strconv.Itoa(c.cmd.Process.Pid) }

// holds reports whether holder is this controller.
func (c *controller) holds(holder string) bool {
	parts := strings.Split(holder, "/")
	return len(parts) == 3 && parts[1] == c.pid()
}

// multiEnv is the fleet's three tenement servers, a Postgres that
// listens where the controllers' namespaces reach it, and the CLI on the
// host.
type multiEnv struct {
	*env
	pg      *pgtest.Served
	st      *store.Store
	gateway string // where the CLI on the host reaches Postgres
}

func newMultiEnv(t *testing.T) (*multiEnv, *localfleet.Host, *localfleet.Host) {
	e := newEnv(t)
	var hosts []*localfleet.Host
	for range 2 {
		h, err := e.fleet.NewHost()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Remove)
		hosts = append(hosts, h)
	}
	restore, err := localfleet.Forwarding()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restore)
	m := &multiEnv{env: e, pg: pgtest.ServeTCP(t, []string{hosts[0].HostAddr, hosts[1].HostAddr}, multiPort, localfleet.Subnet),
		gateway: hosts[1].HostAddr}
	m.slumDB("init")
	st, err := postgres.OpenExisting(context.Background(), m.pg.URL(hosts[1].HostAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m.st = st
	return m, hosts[0], hosts[1]
}

// slumDB runs the CLI on the host against the fleet's Postgres (the URL,
// password and all, in SLUM_DB_URL: never on a command line).
func (m *multiEnv) slumDB(args ...string) string {
	m.t.Helper()
	cmd := exec.Command(slumBin, args...)
	cmd.Env = append(os.Environ(), "SLUM_DB=", "SLUM_DB_URL="+m.pg.URL(m.gateway))
	out, err := cmd.CombinedOutput()
	if err != nil {
		m.t.Fatalf("slum %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs 'slum run' in h's namespace, reaching Postgres at h's
// gateway.
func (m *multiEnv) start(name string, h *localfleet.Host) *controller {
	m.t.Helper()
	c := &controller{name: name, host: h, log: filepath.Join(m.dir, "run-"+name+".log"), done: make(chan struct{})}
	logf, err := os.Create(c.log)
	if err != nil {
		m.t.Fatal(err)
	}
	c.cmd = exec.Command("ip", "netns", "exec", h.Netns, slumBin, "run", "--metrics-addr", "", "--log-level", "debug", "--backoff-max", "2s")
	c.cmd.Env = append(os.Environ(), "SLUM_DB=", "SLUM_DB_URL="+m.pg.URL(h.HostAddr))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); logf.Close(); close(c.done) }()
	m.t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if m.t.Failed() {
			b, _ := os.ReadFile(c.log)
			m.t.Logf("controller %s's log (tail):\n%s", name, tail(string(b), 80))
		}
	})
	return c
}

// leader is the controller lease's holder as the database has it.
func (m *multiEnv) leader() slum.Leadership {
	l, _ := m.st.Leadership(context.Background(), slum.ControllerLease)
	return l
}

// copies counts each instance's copies over the servers that answer.
func (m *multiEnv) copies(servers ...string) map[string][]string {
	where := map[string][]string{}
	for _, id := range servers {
		names, err := m.running(id)
		if err != nil {
			continue
		}
		for _, n := range names {
			where[n] = append(where[n], id)
		}
	}
	return where
}

// doubles names the instances running on two servers at once.
func doubles(where map[string][]string) []string {
	var out []string
	for n, on := range where {
		if len(on) > 1 {
			out = append(out, fmt.Sprintf("%s on %v", n, on))
		}
	}
	slices.Sort(out)
	return out
}

// Two controllers in network namespaces of their own over real tenement
// and a real Postgres. The leader's link is cut: the standby leads; a
// server killed a second after the cut is failed over all the same; no
// instance runs on two servers; the deposed leader gets no write in. Its
// link restored 30 s after the cut, it stands by and touches nothing.
func TestTwoControllersLeaderCutOff(t *testing.T) {
	m, hA, hB := newMultiEnv(t)
	m.slumDB("apply", "-f", m.fleetFile("fleet.yaml", failoverTenants))
	a := m.start("a", hA)
	eventually(t, 20*time.Second, "a leads", func() bool { return a.holds(m.leader().Leader) && m.leader().Live })
	m.converge(map[string][]string{"s1": {"api:alice--prod", "api:bob--prod", "api:carol--prod"},
		"s2": {"api:alice--backup"}, "s3": {"api:dave--prod"}}, 60*time.Second)
	b := m.start("b", hB)
	eventually(t, 20*time.Second, "b stands by, seen in status", func() bool {
		l := m.leader()
		return len(l.Standbys) == 1 && b.holds(l.Standbys[0].Holder)
	})
	epoch := m.leader().Epoch

	// Watch for doubles all along.
	stop := make(chan struct{})
	var mu sync.Mutex
	var seenDoubles []string
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if d := doubles(m.copies("s1", "s2", "s3")); len(d) > 0 {
				mu.Lock()
				seenDoubles = append(seenDoubles, d...)
				mu.Unlock()
			}
		}
	}()
	defer close(stop)

	cut := time.Now()
	if err := hA.SetLink(false); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hA.SetLink(true) }()
	time.Sleep(time.Until(cut.Add(time.Second)))
	s1 := m.member("s1")
	s1.Ten.Kill()
	died := time.Now()
	defer func() { _ = s1.Ten.Launch(context.Background()) }()

	eventually(t, 60*time.Second, "b leads", func() bool { l := m.leader(); return b.holds(l.Leader) && l.Live })
	took := time.Since(cut)
	ledAt := m.pg.LogSize()
	figure(t, "leader cut off: the standby leads (from the cut)", took)
	if took > 5*time.Second {
		t.Errorf("the standby led %v after the cut, want within 5s", took)
	}
	eventually(t, 60*time.Second, "s1's instances run elsewhere", func() bool {
		w := m.copies("s2", "s3")
		return slices.Contains(w["api:alice--prod"], "s3") && len(w["api:bob--prod"]) == 1
	})
	failover := time.Since(died)
	figure(t, "leader cut off, a server killed 1 s later: its instances run elsewhere (from its death)", failover)
	if failover > 5*time.Second {
		t.Errorf("s1's instances ran elsewhere %v after it died, want within 5s", failover)
	}
	if l := m.leader(); l.Epoch != epoch+1 {
		t.Errorf("epoch %d after the takeover, want %d", l.Epoch, epoch+1)
	}

	// The old leader's link back 30 s after the cut: it stands by and
	// touches nothing.
	before := m.copies("s2", "s3")
	time.Sleep(time.Until(cut.Add(30 * time.Second)))
	if err := hA.SetLink(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a stands by, seen in status", func() bool {
		l := m.leader()
		return b.holds(l.Leader) && slices.ContainsFunc(l.Standbys, func(c slum.Controller) bool { return a.holds(c.Holder) && l.Ago(c.SeenAt) < 2*time.Second })
	})
	time.Sleep(3 * time.Second)
	if after := m.copies("s2", "s3"); !sameCopies(before, after) {
		t.Errorf("copies changed after a returned: before %v, after %v", before, after)
	}
	mu.Lock()
	if len(seenDoubles) > 0 {
		t.Errorf("instances on two servers at once: %v", seenDoubles)
	}
	mu.Unlock()
	attempts, writes := fencedWrites(t, a.log), m.pg.WritesFrom(t, hA.Addr, ledAt)
	accepted := len(writes)
	t.Logf("the deposed leader's writes after the cut: %d attempts refused as fenced, %d accepted", attempts, accepted)
	fmt.Printf("e2e figure: %-60s %d attempts, %d accepted\n", "deposed leader's controller writes (fenced)", attempts, accepted)
	if accepted != 0 {
		t.Errorf("%d writes of the deposed leader accepted:\n%s", accepted, strings.Join(writes, "\n"))
	}
}

// sameCopies reports whether a and b name the same copies on the same
// servers.
func sameCopies(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for n, on := range a {
		if !slices.Equal(on, b[n]) {
			return false
		}
	}
	return true
}

// fencedWrites counts the writes a controller's log says were refused
// for a stale epoch.
func fencedWrites(t *testing.T, log string) int {
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "fenced") {
			n++
		}
	}
	return n
}
