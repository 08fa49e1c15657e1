package experiment

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/slum-fleet/slum/localfleet"
)

// controllerRouterPort is where a controller in a namespace of its own
// serves routes: the namespace has the port to itself.
const controllerRouterPort = 18099

// controllerHosts makes the two hosts leader-cut runs its controllers in
// (the leader's, whose link it cuts, and the standby's), when faults hold
// it, with a relay to the database db on each host's end of its link, and
// turns forwarding on so that they reach the servers' hosts. restore
// closes the relays and puts forwarding back; the fleet removes the hosts.
func controllerHosts(faults []Fault, fleet *localfleet.Fleet, db string) ([]*localfleet.Host, []*relay, func(), error) {
	if !slices.Contains(faults, FaultLeaderCut) {
		return nil, nil, func() {}, nil
	}
	target, err := dbTarget(db)
	if err != nil {
		return nil, nil, nil, err
	}
	if fleet.Backend != localfleet.BackendTenement {
		return nil, nil, nil, fmt.Errorf("%s cuts a controller's network link: it needs real tenement servers in network namespaces (root, tenement installed), not %s", FaultLeaderCut, fleet.Backend)
	}
	var hosts []*localfleet.Host
	var relays []*relay
	closeAll := func() {
		for _, r := range relays {
			r.Close()
		}
	}
	for range 2 {
		h, err := fleet.NewHost()
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		rl, err := startRelay(net.JoinHostPort(h.HostAddr, "0"), target)
		if err != nil {
			closeAll()
			return nil, nil, nil, fmt.Errorf("relay the database to %s: %w", h.Netns, err)
		}
		hosts, relays = append(hosts, h), append(relays, rl)
	}
	restore, err := localfleet.Forwarding()
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return hosts, relays, func() { closeAll(); restore() }, nil
}

// controllerSpec is how to start the trial's i-th controller (0 leads
// first, 1 stands by): for leader-cut, in a host of its own, reaching the
// database through a relay on that host's link (r.relays[i]).
func (r *trialRun) controllerSpec(db string, i int, log string) (ControllerSpec, error) {
	spec := ControllerSpec{DB: db, Separate: r.fault == FaultControllerKill || r.fault.NeedsPostgres(), Log: filepath.Join(r.dir, log)}
	if r.fault != FaultLeaderCut {
		return spec, nil
	}
	h := r.hosts[i]
	var err error
	if spec.DB, err = atHost(db, r.relays[i].Addr()); err != nil {
		return spec, err
	}
	spec.Netns, spec.RouterAddr = h.Netns, net.JoinHostPort(h.Addr, strconv.Itoa(controllerRouterPort))
	return spec, nil
}

// dbTarget is the host:port a postgres:// URL reaches its server at over
// TCP; a socket (host=/path) cannot be relayed.
func dbTarget(dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%s needs the database as a postgres:// URL", FaultLeaderCut)
	}
	if q := u.Query(); q.Has("host") || u.Hostname() == "" {
		return "", fmt.Errorf("%s needs Postgres over TCP (a host in the URL), which cutting the link cuts, not a socket", FaultLeaderCut)
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// atHost is the database URL dbURL with its host:port replaced by addr.
func atHost(dbURL, addr string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("%s needs the database as a postgres:// URL", FaultLeaderCut)
	}
	u.Host = addr
	return u.String(), nil
}
