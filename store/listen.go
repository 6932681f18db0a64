package store

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the PostgreSQL channel on which the triggers of the
// token tables announce changes.
const NotifyChannel = "gs_auth_token_changed"

// Reconnection delays of the listener: it starts at the first and doubles
// up to the second.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listen holds a connection that LISTENs for change notifications and
// reloads the cache on each. When the connection drops it reconnects, and
// reloads once connected again, since changes may have been missed; until
// then the periodic reload bounds staleness.
func (c *Cache) listen() {
	defer c.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.stop
		cancel()
	}()

	delay := listenRetryMin
	for ctx.Err() == nil {
		err := c.listenOnce(ctx)
		c.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		c.logger.Warn("the listener for token changes lost its connection; reconnecting, and relying on periodic reloads meanwhile",
			slog.String("error", c.store.scrub(err)), slog.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, listenRetryMax)
	}
}

func (c *Cache) listenOnce(ctx context.Context) error {
	cfg := c.store.dsn.pg.Copy()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	c.listening.Store(true)
	c.forcedLoad()

	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		c.notifications.Add(1)
		if c.forcedLoad() == nil {
			c.observeLag(n.Payload)
		}
	}
}

// observeLag records the time from a change, by the database clock in the
// notification's payload, to now.
func (c *Cache) observeLag(payload string) {
	secs, err := strconv.ParseFloat(payload, 64)
	if err != nil {
		return
	}
	changed := time.Unix(0, int64(secs*float64(time.Second)))
	lag := time.Since(changed)
	if lag < 0 {
		lag = 0
	}
	c.lagNanos.Store(int64(lag))
	if c.onLag != nil {
		c.onLag(lag)
	}
}
