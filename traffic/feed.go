package traffic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/slum-fleet/slum/clock"
)

// SourceName names one router process: prefix (who it is, say its
// token's name) and a random part, new at every start, so the history
// knows a restarted router's counters start again from zero.
func SourceName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if prefix == "" {
		prefix = "router"
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// Feed reports read() as source to send every interval until ctx ends.
// A failed send is given to onErr (nil: ignored) and tried again at the
// next tick with the counters of then: nothing is lost, since they are
// cumulative.
func Feed(ctx context.Context, clk clock.Clock, every time.Duration, source string, read func() Report,
	send func(context.Context, Report) error, onErr func(error)) {
	if clk == nil {
		clk = clock.Real{}
	}
	for {
		r := read()
		r.Source = source
		if err := send(ctx, r); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(every):
		}
	}
}
