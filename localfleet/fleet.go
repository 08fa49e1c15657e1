package localfleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum/observed/sim"
)

// Backends a fleet can run on.
const (
	BackendTenement  = "tenement"
	BackendSimulator = "simulator"
)

// Options describe a local fleet.
type Options struct {
	Servers  int
	Dir      string
	Backend  string // "" picks tenement when it can run here, else the simulator
	Services []Service
	// SimPort is the first simulator's port; 0 picks free ports.
	SimPort int
	// Names are the servers' ids, as the fleet file that points at them
	// names them (the tenant app reports its server's); empty: s1, s2, ….
	Names []string
}

// name is the id of the i-th server (from 1).
func (o Options) name(i int) string {
	if i <= len(o.Names) {
		return o.Names[i-1]
	}
	return fmt.Sprintf("s%d", i)
}

// Member is one server of a local fleet.
type Member struct {
	ID  string
	URL string
	// Domain is the domain the server routes subdomains of (tenement's
	// --domain): a fleet file must name it for routing to reach instances.
	Domain    string
	Token     string
	TokenFile string
	Ten       *Ten        // with the tenement backend
	Host      *Host       // its network namespace, with the tenement backend
	Sim       *sim.Server // with the simulator backend
}

// Fleet is a running local fleet.
type Fleet struct {
	Backend string
	Reason  string // why this backend
	Members []*Member
	tag     string
	block   int     // the fleet's 10.77.block.0/24, when its servers have hosts
	extra   []*Host // hosts of NewHost
}

// Start brings up opt.Servers servers, named as opt.Names says.
func Start(ctx context.Context, opt Options) (*Fleet, error) {
	if opt.Servers < 1 || opt.Servers > MaxHosts {
		return nil, fmt.Errorf("servers must be 1 to %d, not %d", MaxHosts, opt.Servers)
	}
	if len(opt.Names) != 0 && len(opt.Names) != opt.Servers {
		return nil, fmt.Errorf("%d names for %d servers", len(opt.Names), opt.Servers)
	}
	backend, reason := opt.Backend, "asked for"
	if backend == "" {
		backend, reason = BackendTenement, "real tenement servers ('ten "+TenementVersion+"'), each in its own network namespace"
		if _, err := FindTen(); err != nil {
			backend, reason = BackendSimulator, err.Error()
		} else if err := CanNetns(); err != nil {
			backend, reason = BackendSimulator, "real tenement servers on one machine need a network namespace each, and "+err.Error()
		}
	}
	f := &Fleet{Backend: backend, Reason: reason, tag: newTag()}
	var err error
	switch backend {
	case BackendTenement:
		err = f.startTen(ctx, opt)
	case BackendSimulator:
		err = f.startSim(opt)
	default:
		err = fmt.Errorf("unknown backend %q (tenement or simulator)", backend)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Fleet) startTen(ctx context.Context, opt Options) error {
	if err := CanNetns(); err != nil {
		return err
	}
	unlock, err := lockBlocks()
	if err != nil {
		return err
	}
	RemoveStale()
	block, err := freeBlock()
	f.block = block
	if err == nil {
		for i := 1; i <= opt.Servers; i++ {
			var h *Host
			if h, err = newHost(f.tag, block, i); err != nil {
				break
			}
			f.Members = append(f.Members, &Member{ID: opt.name(i), Host: h})
		}
	}
	unlock()
	if err != nil {
		return err
	}
	for _, m := range f.Members {
		m.Domain = m.ID + ".fleet.test"
		t, err := StartTen(ctx, TenOptions{Name: m.ID, Dir: filepath.Join(opt.Dir, m.ID), Port: 8080, Services: opt.Services,
			Netns: m.Host.Netns, HostAddr: m.Host.HostAddr, URL: "http://" + m.Host.Addr + ":8080", Domain: m.Domain})
		if err != nil {
			return fmt.Errorf("server %s: %w", m.ID, err)
		}
		m.Ten, m.URL, m.Token, m.TokenFile = t, t.URL, t.Token, t.TokenFile
	}
	return nil
}

// fleets counts the fleets this process started, for unique tags.
var fleets atomic.Int64

// newTag names a fleet's namespaces and links: this process's id and a
// count, so a later run can tell whose they were (tagPID).
func newTag() string {
	return strconv.FormatInt(int64(os.Getpid()), tagBase) + "x" + strconv.FormatInt(fleets.Add(1), tagBase)
}

// tagBase writes a tag's numbers with the digits 0-9a-w: never an "x",
// which parts them. (In base 36 a pid such as 11409, "8sx", held one, and
// a run took a live fleet's namespaces for those of a dead process.)
const tagBase = 33

// tagPID is the id of the process that made tag, from its start up to the
// "x".
func tagPID(tag string) (int, bool) {
	pid33, _, ok := strings.Cut(tag, "x")
	pid, err := strconv.ParseInt(pid33, tagBase, 32)
	if !ok || err != nil || pid <= 0 {
		return 0, false
	}
	return int(pid), true
}

func (f *Fleet) startSim(opt Options) error {
	services := opt.Services
	if len(services) == 0 {
		services = []Service{{Name: "api"}}
	}
	cfg := sim.Config{Processes: map[string]sim.Process{}}
	for _, s := range services {
		cfg.Processes[s.Name] = sim.Process{IdleTimeout: time.Duration(s.IdleTimeout) * time.Second}
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return err
	}
	for i := 1; i <= opt.Servers; i++ {
		m := &Member{ID: opt.name(i), Token: "sim-token-" + strconv.Itoa(i)}
		c := cfg
		c.Token = m.Token
		m.Sim = sim.New(c)
		addr := "127.0.0.1:0"
		if opt.SimPort != 0 {
			addr = fmt.Sprintf("127.0.0.1:%d", opt.SimPort+i-1)
		}
		url, err := m.Sim.Start(addr)
		if err != nil {
			return fmt.Errorf("server %s: %w", m.ID, err)
		}
		m.URL, m.Domain = url, "127.0.0.1"
		m.TokenFile = filepath.Join(opt.Dir, m.ID+".token")
		if err := os.WriteFile(m.TokenFile, []byte(m.Token+"\n"), 0o600); err != nil {
			return err
		}
		f.Members = append(f.Members, m)
	}
	return nil
}

// NewHost makes one more host in the fleet's block, with no server in it
// (for a controller of its own), removed with the fleet. Only a fleet of
// real tenement servers has hosts.
func (f *Fleet) NewHost() (*Host, error) {
	if f.Backend != BackendTenement {
		return nil, fmt.Errorf("a fleet of %s servers has no hosts", f.Backend)
	}
	unlock, err := lockBlocks()
	if err != nil {
		return nil, err
	}
	defer unlock()
	h, err := newHost(f.tag, f.block, len(f.Members)+len(f.extra)+1)
	if err != nil {
		return nil, err
	}
	f.extra = append(f.extra, h)
	return h, nil
}

// Close stops every server and removes the namespaces.
func (f *Fleet) Close() {
	hosts := len(f.extra) > 0
	for _, h := range f.extra {
		h.Remove()
	}
	for _, m := range f.Members {
		if m.Ten != nil {
			m.Ten.Stop()
		}
		if m.Host != nil {
			m.Host.Remove()
			hosts = true
		}
		if m.Sim != nil {
			m.Sim.Close()
		}
	}
	if hosts {
		RemoveBlackhole()
	}
}
