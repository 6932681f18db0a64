package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gs-auth-token/gs-auth-token/hook"
	"github.com/gs-auth-token/gs-auth-token/internal/server"
	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// shutdownTimeout bounds how long serve waits for requests in flight when
// it is told to stop.
const shutdownTimeout = 30 * time.Second

type serveOptions struct {
	listen    string
	siteID    string
	siteName  string
	maxBody   int64
	logLevel  string
	logFormat string
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

When the store holds no token, serve creates one and prints it once on
standard output. Logs, including an access log without query strings, go to
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

	st, err := openStore(ctx, a.dsn(), []store.Option{store.WithLogger(logger)})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := a.ensureFirstToken(ctx, st, logger); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("listening on %s failed: %w", o.listen, err),
			hint: "choose another address with --listen, or stop the program that uses this one"}
	}
	site := hook.Site{ID: o.siteID, Name: o.siteName}
	srv := &http.Server{
		Handler: hook.AccessLog(logger)(server.Handler(server.Config{
			Verifier: st, Audit: st, Site: site, Logger: logger, MaxBodyBytes: o.maxBody,
		})),
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

// ensureFirstToken creates the install-wide token when the store has none,
// and prints it once.
func (a *app) ensureFirstToken(ctx context.Context, st *store.Store, logger *slog.Logger) error {
	tok, err := token.Generate()
	if err != nil {
		return err
	}
	created, err := st.CreateLegacyTokenIfNone(ctx, tok)
	if err != nil {
		return err
	}
	if !created {
		return nil
	}
	logger.Info("the store had no token, so a new one was created and printed on standard output")
	fmt.Fprintf(a.stdout, "A new token was created. It is shown only this once; put it in each client's configuration:\n\n    %s\n\n", tok)
	return nil
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
