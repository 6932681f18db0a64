package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/metrics"
	"github.com/gs-auth-token/gs-auth-token/internal/server"
	"github.com/gs-auth-token/gs-auth-token/store"
)

// shutdownTimeout bounds the wait for requests in flight when serve gets
// SIGINT or SIGTERM.
const shutdownTimeout = 30 * time.Second

type serveOptions struct {
	listen            string
	siteID            string
	siteName          string
	maxBody           int64
	logLevel          string
	logFormat         string
	throttleFailures  int
	throttleWindow    time.Duration
	trustedProxies    []string
	rejectInstallWide bool
	metricsListen     string
	cache             bool
	staleness         time.Duration
	auditQueue        int
	auditSpool        string
}

func (a *app) serveCommand() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the example hook and the token check hook",
		Long: `serve answers web hooks over HTTP from the chosen store:

  /some-hook.json             the example hook: a token field and the action "some"
  /gs-auth-token-check.json   action "check": 200 with the site when the token is
                              valid, 401 when it is not

When no token is valid for the site, serve creates one named "default"
and prints it once on standard output. Tokens may come in the body field
"token" or in an "Authorization: Bearer TOKEN" header. A client address
with too many failed authentications gets 429 until its count recovers;
each such request is held up to a second first. Logs, including an access log without query strings, go to
standard error. SIGINT or SIGTERM stops it after the requests in flight.

Try it:

  curl -d "token=$TOKEN&some" http://127.0.0.1:8080/some-hook.json`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address and port to listen on")
	f.StringVar(&o.siteID, "site-id", "", `id of the site the hooks belong to; "" is the install-wide site`)
	f.StringVar(&o.siteName, "site-name", "", "name of the site, for logs")
	f.Int64Var(&o.maxBody, "max-body-bytes", hook.DefaultMaxBodyBytes, "largest request body accepted, in bytes")
	f.StringVar(&o.logLevel, "log-level", "info", "least severe log level written: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.IntVar(&o.throttleFailures, "throttle-failures", hook.DefaultFailures,
		"failed authentications a client address may make per --throttle-window before it gets 429; 0 turns throttling off")
	f.DurationVar(&o.throttleWindow, "throttle-window", hook.DefaultWindow, "window of --throttle-failures")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxy", nil,
		"address or CIDR of a reverse proxy whose X-Forwarded-For header names the client; repeat for several (default none: the header is ignored)")
	f.StringVar(&o.metricsListen, "metrics-listen", "",
		"address and port for Prometheus metrics at /metrics, apart from the hooks (default off)")
	f.BoolVar(&o.cache, "cache", true, "check tokens against an in-memory copy; false queries the database on every request")
	f.DurationVar(&o.staleness, "cache-staleness", store.DefaultStaleness,
		"oldest the in-memory copy of the tokens may be before checks fail closed; it is reloaded at half this, and at once on PostgreSQL notifications")
	f.IntVar(&o.auditQueue, "audit-queue", audit.DefaultQueueSize,
		"audit events that may wait to be written; beyond that an event is logged at error level and dropped")
	f.StringVar(&o.auditSpool, "audit-spool", "",
		"file that keeps audit events while the database is unreachable, replayed when it answers and at the next start; one per instance (default none: such events are retried in memory, and logged and dropped when the queue is full)")
	f.BoolVar(&o.rejectInstallWide, "reject-install-wide", false,
		`accept only tokens of --site-id, not install-wide ones (site "") such as GroupServer's plain-text token`)
	return cmd
}

func (a *app) serve(ctx context.Context, o serveOptions) error {
	logger, err := newLogger(a.stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.maxBody <= 0 {
		return &usageError{msg: fmt.Sprintf("invalid --max-body-bytes %d: must be positive", o.maxBody)}
	}
	if o.throttleFailures < 0 || o.throttleWindow <= 0 {
		return &usageError{msg: fmt.Sprintf("invalid --throttle-failures %d or --throttle-window %s: use a count of 0 or more and a positive window",
			o.throttleFailures, o.throttleWindow)}
	}
	trusted, err := parsePrefixes(o.trustedProxies)
	if err != nil {
		return err
	}
	if err := store.ValidateSiteID(o.siteID); err != nil {
		return &usageError{msg: "invalid --site-id: " + err.Error()}
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return &usageError{msg: fmt.Sprintf("invalid --listen %q: give a host and port, such as 127.0.0.1:8080", o.listen)}
	}

	st, err := openStore(ctx, a.dsn(), []store.Option{store.WithLogger(logger)})
	if err != nil {
		return err
	}
	defer st.Close()

	// Listen before making a first token, so that a port in use does not
	// leave a token printed for a server that never ran.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("listening on %s failed: %w", o.listen, err),
			hint: "choose another address with --listen, or stop the program that uses this one"}
	}
	defer ln.Close()
	if err := a.ensureFirstToken(ctx, st, o.siteID, o.rejectInstallWide, logger); err != nil {
		return err
	}

	site := hook.Site{ID: o.siteID, Name: o.siteName}
	batchOpts := []audit.BatcherOption{audit.WithBatchLogger(logger), audit.WithQueueSize(o.auditQueue)}
	if o.auditSpool != "" {
		spool, err := audit.OpenSpool(o.auditSpool)
		if err != nil {
			return &exitError{code: ExitFailed, err: err, hint: "give each instance its own --audit-spool file"}
		}
		defer spool.Close()
		if n := spool.Len(); n > 0 {
			logger.Info("the audit spool holds events from an earlier run; replaying them", slog.Int("events", n), slog.String("spool", o.auditSpool))
		}
		batchOpts = append(batchOpts, audit.WithSpool(spool))
	}
	batcher := audit.NewBatcher(st, batchOpts...)
	defer closeBatcher(batcher, logger)
	lag := metrics.NewLagHistogram()
	cfg := server.Config{Verifier: st, Audit: batcher, Site: site, Logger: logger, MaxBodyBytes: o.maxBody,
		RejectInstallWide: o.rejectInstallWide, Stats: &hook.Stats{}}
	src := metrics.Sources{Hooks: cfg.Stats, Audit: batcher}
	if o.cache {
		cache, err := st.NewCache(ctx, store.WithStaleness(o.staleness), store.WithLagObserver(metrics.ObserveLag(lag)))
		if err != nil {
			return err
		}
		defer cache.Close()
		cfg.Verifier, src.Cache = cache, cache
	}
	if o.throttleFailures > 0 {
		cfg.Throttle = hook.NewThrottle(o.throttleFailures, o.throttleWindow)
		src.Throttle = cfg.Throttle
	}
	if o.metricsListen != "" {
		stop, err := serveMetrics(o.metricsListen, metrics.Registry(src, lag), logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	if len(trusted) > 0 {
		cfg.ClientAddr = hook.ForwardedFor(trusted)
	}
	srv := &http.Server{
		Handler:           hook.AccessLog(logger)(server.Handler(cfg)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	logger.Info("serving hooks", slog.String("address", "http://"+ln.Addr().String()), slog.String("store", st.DSN()),
		slog.String("site_id", site.ID), slog.String("site_name", site.Name),
		slog.String("hooks", server.SomeHookPath+" "+server.CheckHookPath))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serving failed: %w", err)
	case <-ctx.Done():
	}
	logger.Info("stopping: waiting for requests in flight", slog.Duration("timeout", shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("stopping did not finish in time; closing connections", slog.String("error", err.Error()))
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serving failed while stopping", slog.String("error", err.Error()))
	}
	logger.Info("stopped")
	return nil
}

// ensureFirstToken creates a token named "default" for the site when no
// token is valid for it, and prints it once.
func (a *app) ensureFirstToken(ctx context.Context, st *store.Store, siteID string, siteOnly bool, logger *slog.Logger) error {
	usable, err := st.HasUsableToken(ctx, siteID, siteOnly)
	if err != nil || usable {
		return err
	}
	tok, t, err := st.CreateToken(ctx, "default", siteID, 0)
	if errors.Is(err, store.ErrExists) {
		logger.Warn("no token is valid for the site, and a token named default exists but is expired; create one with 'gs-auth-token create --name NAME'",
			slog.String("site_id", siteID))
		return nil
	}
	if err != nil {
		return err
	}
	logger.Info("no token was valid for the site, so a new one was created and printed on standard output",
		slog.String("token_id", t.ID), slog.String("token_name", t.Name), slog.String("site_id", siteID))
	fmt.Fprintf(a.stdout, "A new token named %q was created. It is shown only this once; put it in each client's configuration:\n\n    %s\n\n", t.Name, tok)
	return nil
}

// closeBatcher writes the queued audit events before serve exits.
func closeBatcher(b *audit.Batcher, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		logger.Error("writing the queued audit events failed; each was logged", slog.String("error", err.Error()))
	}
}

// serveMetrics serves Prometheus metrics at /metrics on its own address,
// so that nothing but hooks is exposed on the hook port. It returns a
// function that stops it.
func serveMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &exitError{code: ExitFailed, err: fmt.Errorf("listening on --metrics-listen %s failed: %w", addr, err),
			hint: "choose another address with --metrics-listen"}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving metrics failed", slog.String("error", err.Error()))
		}
	}()
	logger.Info("serving metrics", slog.String("address", "http://"+ln.Addr().String()+"/metrics"))
	return func() { srv.Close() }, nil
}

// parsePrefixes parses addresses and CIDR prefixes of trusted proxies.
func parsePrefixes(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, &usageError{msg: fmt.Sprintf("invalid --trusted-proxy %q: use an address such as 10.0.0.5 or a CIDR such as 10.0.0.0/24", v)}
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// newLogger returns a slog logger writing to w at the given level and in the
// given format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{msg: fmt.Sprintf("invalid --log-level %q: use debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, &usageError{msg: fmt.Sprintf("invalid --log-format %q: use text or json", format)}
}
