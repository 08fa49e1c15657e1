package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// channel is the fleet's notification channel, which migration 0001's
// notify_change names: "slum:" and the schema's name.
func (e *Engine) channel() string { return "slum:" + e.schema }

// Changes receives soon after every commit that changes the desired state
// or the controller's status (the triggers on revision and
// status_revision notify at commit), and each time its connection is made
// or made again: notifications sent while it was away are lost, so the
// reader reads again. It listens on a connection of its own, which it
// makes again by itself (warning in the log) when it breaks. Values do
// not queue: a reader that was busy gets one for all the commits it
// missed. The channel closes when ctx ends or the engine is closed.
func (e *Engine) Changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.life, cancel)
	go func() {
		defer stop()
		defer cancel()
		e.listen(ctx, ch)
	}()
	return ch
}

// listenerName names the feed's connections in pg_stat_activity.
const listenerName = "slum-changes"

const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

func (e *Engine) listen(ctx context.Context, ch chan struct{}) {
	defer close(ch)
	wait := listenRetryMin
	for {
		err := e.listenOnce(ctx, ch, func() { wait = listenRetryMin })
		if ctx.Err() != nil {
			return
		}
		slog.Warn("postgres: the feed of commits lost its connection; readers poll until it is back", "db", e.where, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// listenOnce listens on one connection until it fails or ctx ends;
// connected is called once it listens.
func (e *Engine) listenOnce(ctx context.Context, ch chan struct{}, connected func()) error {
	cfg := e.cfg.ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return hidePassword(err, e.cfg.ConnConfig.Password)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{e.channel()}.Sanitize()); err != nil {
		return err
	}
	connected()
	for {
		signal(ch)
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
	}
}

// signal tells the reader, unless it has yet to take the last one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
