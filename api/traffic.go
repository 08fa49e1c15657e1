package api

import (
	"context"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/traffic"
)

// trafficFleet is the fleet as the API's operations see it: the store,
// and the traffic history routers report to.
type trafficFleet struct {
	slum.Fleet
	hist *traffic.History
}

var _ wire.TrafficFleet = trafficFleet{}

func (f trafficFleet) RecordTraffic(_ context.Context, r traffic.Report) error {
	return f.hist.Record(r)
}

func (f trafficFleet) Traffic(_ context.Context, q traffic.Query) (*traffic.Window, error) {
	return f.hist.Window(q), nil
}
