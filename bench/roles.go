package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/gs-auth-token/gs-auth-token/store"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// tokenEnv passes the benchmark's token to the bare server, so that it is
// not visible in the process list.
const tokenEnv = "GS_AUTH_TOKEN_BENCH_TOKEN"

// answer is the JSON every server sends on success, the same as the
// example hook's.
const answer = "{\n    \"message\": [\n        \"Some hook ran.\"\n    ],\n    \"status\": 0\n}\n"

// runRole runs this binary as one of the servers under test: bare or echo.
func runRole(args []string) int {
	fs := flag.NewFlagSet("role", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	dsn := fs.String("dsn", "", "store, for the echo server")
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bench: error: -role needs bare or echo")
		return 2
	}
	role := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var h http.Handler
	switch role {
	case "bare":
		h = bareHandler([]byte(os.Getenv(tokenEnv)))
	case "echo":
		st, err := store.Open(ctx, *dsn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
			return 1
		}
		defer st.Close()
		cache, err := st.NewCache(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
			return 1
		}
		defer cache.Close()
		h = echoHandler(cache)
	default:
		fmt.Fprintf(os.Stderr, "bench: error: unknown role %q\n", role)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
		return 1
	}
	srv := newServer(h)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
		return 1
	}
	return 0
}

// newServer returns a server with the timeouts that gs-auth-token serve
// sets, so that every server in the comparison pays for the same
// protection against slow clients and only the handlers differ.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
}

// setHeaders sets the headers of the hook's JSON responses, so that every
// server sends the same bytes apart from the Date header.
func setHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// bareHandler is the ceiling: it parses the form, compares the token with
// the one it was given, and writes the example hook's answer.
func bareHandler(want []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, `{"status": 100}`, http.StatusBadRequest)
			return
		}
		setHeaders(w.Header())
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), want) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"status": 100, "message": ["Authentication failed."]}`))
			return
		}
		w.Write([]byte(answer))
	})
}

// echoHandler serves the route behind echo's KeyAuth middleware, reading
// the key from the form field "token" and checking it with the same cache
// as the hook, so that the comparison is of the frameworks.
func echoHandler(cache *store.Cache) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.KeyAuthWithConfig(middleware.KeyAuthConfig{
		KeyLookup: "form:token",
		Validator: func(key string, c echo.Context) (bool, error) {
			_, err := cache.Verify(c.Request().Context(), "", key)
			if errors.Is(err, token.ErrMismatch) {
				return false, nil
			}
			return err == nil, err
		},
	}))
	e.POST("/some-hook.json", func(c echo.Context) error {
		setHeaders(c.Response().Header())
		return c.Blob(http.StatusOK, "application/json", []byte(answer))
	})
	return e
}
