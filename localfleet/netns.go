package localfleet

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Host is a network namespace of this machine's own, joined to the host by
// a veth pair: the host side has 10.77.N.1/30 and the namespace
// 10.77.N.2/30. Each tenement server runs in one, so servers do not share
// instance ports.
type Host struct {
	Netns  string
	HostIf string // the host end of the veth pair
	Addr   string // the namespace's address, as the host reaches it
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

// NewHost makes namespace number n (1 to 250) with a tag unique to this
// run (names must fit the kernel's 15-character interface names).
func NewHost(tag string, n int) (*Host, error) {
	if n < 1 || n > 250 {
		return nil, fmt.Errorf("host number %d out of range", n)
	}
	h := &Host{Netns: fmt.Sprintf("slum-%s-%d", tag, n), HostIf: fmt.Sprintf("sl%s%dh", tag, n), Addr: fmt.Sprintf("10.77.%d.2", n)}
	peer := fmt.Sprintf("sl%s%dn", tag, n)
	if len(h.HostIf) > 15 || len(peer) > 15 {
		return nil, fmt.Errorf("tag %q too long for interface names", tag)
	}
	// Addresses of 10.77.0.0/16 must never leave this machine: should a
	// link go down, its connected route goes with it and the default route
	// would carry the traffic out. The blackhole route drops it instead,
	// as a cut cable would.
	if err := run("ip", "route", "replace", "blackhole", Subnet, "metric", "4242"); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "netns", "add", h.Netns},
		{"ip", "link", "add", h.HostIf, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", h.Netns},
		{"ip", "addr", "add", fmt.Sprintf("10.77.%d.1/30", n), "dev", h.HostIf},
		{"ip", "link", "set", h.HostIf, "up"},
		{"ip", "netns", "exec", h.Netns, "ip", "addr", "add", fmt.Sprintf("10.77.%d.2/30", n), "dev", peer},
		{"ip", "netns", "exec", h.Netns, "ip", "link", "set", peer, "up"},
		{"ip", "netns", "exec", h.Netns, "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			h.Remove()
			return nil, err
		}
	}
	return h, nil
}

// SetLink cuts (false) or restores (true) the host's link to the
// namespace.
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run("ip", "link", "set", h.HostIf, state)
}

// Remove deletes the namespace and its veth pair; it is safe to call twice.
func (h *Host) Remove() {
	_ = exec.Command("ip", "link", "del", h.HostIf).Run()
	_ = exec.Command("ip", "netns", "del", h.Netns).Run()
}

// RemoveBlackhole drops the route NewHost adds, once no host is left.
func RemoveBlackhole() {
	_ = exec.Command("ip", "route", "del", "blackhole", Subnet, "metric", "4242").Run()
}

// RemoveStale deletes namespaces and links left by earlier runs with this
// tag (a killed test cannot clean up after itself).
func RemoveStale(tag string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "slum-"+tag+"-") {
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
			if strings.HasPrefix(name, "sl"+tag) {
				_ = exec.Command("ip", "link", "del", name).Run()
			}
		}
	}
}
