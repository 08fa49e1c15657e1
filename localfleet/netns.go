package localfleet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Host is a network namespace of this machine's own, joined to the host by
// a veth pair. Each tenement server runs in one, so servers do not share
// instance ports. A fleet's hosts share one /24 of 10.77.0.0/16 of its own,
// a /30 each, so several fleets (a demo, a test run, an experiment) can run
// on one machine at once without their addresses colliding.
type Host struct {
	Netns  string
	HostIf string // the host end of the veth pair
	PeerIf string // the namespace end
	Addr   string // the namespace's address, as the host reaches it
	// HostAddr is the host's address on the link, as the namespace
	// reaches it (a store on the host listening on every address).
	HostAddr string
}

// Subnet holds every test host's address.
const Subnet = "10.77.0.0/16"

// CanNetns reports why network namespaces cannot be made here, or nil.
func CanNetns() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("network namespaces need iproute2's ip command: %w", err)
	}
	return nil
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lockBlocks serialises the choice of address blocks between fleets on
// this machine; the returned function releases the lock.
func lockBlocks() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "slum-localfleet.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// freeBlock returns a third octet B such that no address of 10.77.B.0/24
// is configured on this machine.
func freeBlock() (int, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return 0, fmt.Errorf("ip addr show: %w", err)
	}
	used := map[int]bool{}
	for _, f := range strings.Fields(string(out)) {
		if rest, ok := strings.CutPrefix(f, "10.77."); ok {
			if b, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0]); err == nil {
				used[b] = true
			}
		}
	}
	for b := 1; b < 255; b++ {
		if !used[b] {
			return b, nil
		}
	}
	return 0, fmt.Errorf("every /24 of %s is in use by other local fleets", Subnet)
}

// MaxHosts is the most hosts one fleet's block holds.
const MaxHosts = 63

// newHost makes host number n (1 to MaxHosts) of block, named with a tag
// unique to this run (names must fit the kernel's 15-character interface
// names).
func newHost(tag string, block, n int) (*Host, error) {
	if n < 1 || n > MaxHosts {
		return nil, fmt.Errorf("host number %d out of range 1 to %d", n, MaxHosts)
	}
	base := 4 * (n - 1)
	h := &Host{Netns: fmt.Sprintf("slum-%s-%d", tag, n), HostIf: fmt.Sprintf("sl%s%dh", tag, n), PeerIf: fmt.Sprintf("sl%s%dn", tag, n),
		Addr: fmt.Sprintf("10.77.%d.%d", block, base+2), HostAddr: fmt.Sprintf("10.77.%d.%d", block, base+1)}
	if len(h.HostIf) > 15 || len(h.PeerIf) > 15 {
		return nil, fmt.Errorf("tag %q too long for interface names", tag)
	}
	// Addresses of 10.77.0.0/16 must never leave this machine: should a
	// host's route go away, the default route would carry the traffic
	// out. The blackhole route drops it instead, as a cut cable would.
	if err := run("ip", "route", "replace", "blackhole", Subnet, "metric", "4242"); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "netns", "add", h.Netns},
		{"ip", "link", "add", h.HostIf, "type", "veth", "peer", "name", h.PeerIf},
		{"ip", "link", "set", h.PeerIf, "netns", h.Netns},
		{"ip", "addr", "add", fmt.Sprintf("10.77.%d.%d/30", block, base+1), "dev", h.HostIf},
		{"ip", "link", "set", h.HostIf, "up"},
		{"ip", "netns", "exec", h.Netns, "ip", "addr", "add", fmt.Sprintf("10.77.%d.%d/30", block, base+2), "dev", h.PeerIf},
		{"ip", "netns", "exec", h.Netns, "ip", "link", "set", h.PeerIf, "up"},
		{"ip", "netns", "exec", h.Netns, "ip", "link", "set", "lo", "up"},
		// The other namespaces are through the host, which passes packets
		// on only while forwarding is on.
		{"ip", "netns", "exec", h.Netns, "ip", "route", "add", Subnet, "via", h.HostAddr},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			h.Remove()
			return nil, err
		}
	}
	return h, nil
}

// SetLink cuts (false) or restores (true) the link between the host and
// the namespace. It is the namespace's end that goes down: the host keeps
// its route to the namespace, so packets for it are dropped on this
// machine (they time out, as over a cut cable) and never take the default
// route out.
//
// The link going down takes the namespace's route to the other
// namespaces with it: restoring the link puts it back.
func (h *Host) SetLink(up bool) error {
	if !up {
		return run("ip", "netns", "exec", h.Netns, "ip", "link", "set", h.PeerIf, "down")
	}
	if err := run("ip", "netns", "exec", h.Netns, "ip", "link", "set", h.PeerIf, "up"); err != nil {
		return err
	}
	return run("ip", "netns", "exec", h.Netns, "ip", "route", "replace", Subnet, "via", h.HostAddr)
}

// Remove ends every process left in the namespace (the instances of a
// tenement server killed with SIGKILL outlive it), then deletes the
// namespace and its veth pair; it is safe to call twice.
func (h *Host) Remove() {
	KillAll(h.Netns)
	_ = exec.Command("ip", "link", "del", h.HostIf).Run()
	_ = exec.Command("ip", "netns", "del", h.Netns).Run()
}

// KillAll sends SIGKILL to every process in a network namespace.
func KillAll(netns string) {
	out, err := exec.Command("ip", "netns", "pids", netns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// RemoveBlackhole drops the route newHost adds, once no local fleet's
// namespace is left on this machine.
func RemoveBlackhole() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "slum-") {
			return
		}
	}
	_ = exec.Command("ip", "route", "del", "blackhole", Subnet, "metric", "4242").Run()
}

// RemoveStale deletes the namespaces and links of fleets whose process is
// gone (a killed test or demo cannot clean up after itself), ending any
// process left in them.
func RemoveStale() {
	stale := func(tag string) bool {
		pid, ok := tagPID(tag)
		return ok && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "slum-") {
			continue
		}
		if stale(netnsTag(f[0])) {
			KillAll(f[0])
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		if tag, ok := linkTag(name); ok && stale(tag) {
			_ = exec.Command("ip", "link", "del", name).Run()
		}
	}
}

// netnsTag is the tag in a namespace's name, slum-<tag>-<n>.
func netnsTag(name string) string {
	tag := strings.TrimPrefix(name, "slum-")
	return tag[:max(strings.LastIndexByte(tag, '-'), 0)]
}

// linkTag is the start of the tag in a host-side link's name,
// sl<tag><n>h, up to the host number's digits (which may take some of the
// tag's count with them: the process id before the "x" is what counts).
func linkTag(name string) (string, bool) {
	if !strings.HasPrefix(name, "sl") || !strings.HasSuffix(name, "h") {
		return "", false
	}
	tag := strings.TrimRight(strings.TrimSuffix(strings.TrimPrefix(name, "sl"), "h"), "0123456789")
	return tag, strings.Contains(tag, "x")
}

// Forwarding turns the host's IPv4 forwarding on, so that namespaces reach
// each other through it (a controller in one, tenement servers in
// others); restore puts it back as it was.
func Forwarding() (restore func(), err error) {
	const path = "/proc/sys/net/ipv4/ip_forward"
	was, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return nil, fmt.Errorf("turn IPv4 forwarding on: %w", err)
	}
	return func() { _ = os.WriteFile(path, was, 0o644) }, nil
}
