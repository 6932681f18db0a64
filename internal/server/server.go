// Package server assembles the hooks that gs-auth-token serve offers: the
// example hook of GroupServer's documentation and a hook that lets a script
// test its token.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/hook"
)

// Paths of the hooks.
const (
	SomeHookPath  = "/some-hook.json"
	CheckHookPath = "/gs-auth-token-check.json"
)

// Config is the configuration of the hooks.
type Config struct {
	// Verifier checks tokens.
	Verifier hook.Verifier
	// Audit receives audit events of token failures. Nil writes none.
	Audit audit.Writer
	// Site is the site the hooks belong to.
	Site hook.Site
	// Logger receives the hooks' log lines.
	Logger *slog.Logger
	// MaxBodyBytes is the largest accepted body; zero means
	// [hook.DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// Throttle limits failed authentications per client; nil turns
	// throttling off.
	Throttle *hook.Throttle
	// ClientAddr finds the client address; nil means the connection's.
	ClientAddr func(*http.Request) string
	// RejectInstallWide makes the hooks refuse install-wide tokens.
	RejectInstallWide bool
	// Stats counts the outcomes of submissions; nil counts nothing.
	Stats *hook.Stats
}

// Handler returns a mux that serves both hooks, an index at "/" and JSON
// 404 responses elsewhere.
func Handler(cfg Config) http.Handler {
	// Both prefixes, so that JSON clients (token=…&some) and GroupServer's
	// form clients (form.token=…&form.actions.some) reach the same hooks.
	opts := []hook.Option{hook.WithSite(cfg.Site), hook.WithLogger(cfg.Logger), hook.WithPrefixes("", "form.")}
	if cfg.Audit != nil {
		opts = append(opts, hook.WithAudit(cfg.Audit))
	}
	if cfg.MaxBodyBytes > 0 {
		opts = append(opts, hook.WithMaxBodyBytes(cfg.MaxBodyBytes))
	}
	if cfg.Throttle != nil {
		opts = append(opts, hook.WithThrottle(cfg.Throttle))
	}
	if cfg.ClientAddr != nil {
		opts = append(opts, hook.WithClientAddr(cfg.ClientAddr))
	}
	if cfg.Stats != nil {
		opts = append(opts, hook.WithStats(cfg.Stats))
	}
	if cfg.RejectInstallWide {
		opts = append(opts, hook.WithInstallWideTokens(false))
	}
	mux := http.NewServeMux()
	mux.Handle(SomeHookPath, hook.New(SomeHook(), cfg.Verifier, opts...))
	mux.Handle(CheckHookPath, hook.New(CheckHook(), cfg.Verifier, opts...))
	mux.HandleFunc("/", index)
	return mux
}

// tokenField is the token field both hooks declare.
var tokenField = hook.Field{
	Name:        "token",
	Kind:        hook.AuthToken,
	Title:       "Token",
	Description: "The authentication token",
	Required:    true,
}

// someHookAnswer is the example hook's answer, encoded once, and
// someHookResult the same held in an interface once, so that returning it
// allocates nothing.
var (
	someHookAnswer     = json.RawMessage("{\n    \"message\": [\n        \"Some hook ran.\"\n    ],\n    \"status\": 0\n}\n")
	someHookResult any = someHookAnswer
)

// SomeHook is the example hook of GroupServer's documentation: a token
// field and one action, some.
func SomeHook() hook.Hook {
	return hook.Hook{
		Label:  "Some hook",
		Fields: []hook.Field{tokenField},
		Actions: []hook.Action{{
			Name:  "some",
			Label: "Some",
			Success: func(ctx context.Context, s *hook.Submission) (any, error) {
				return someHookResult, nil
			},
		}},
	}
}

// CheckHook reports whether a token is valid, so that a script can test its
// configuration: 200 with the site when it is, 401 like every hook when it
// is not.
func CheckHook() hook.Hook {
	return hook.Hook{
		Label:  "Check that a token is valid for this site",
		Fields: []hook.Field{tokenField},
		Actions: []hook.Action{{
			Name:  "check",
			Label: "Check the token",
			Success: func(ctx context.Context, s *hook.Submission) (any, error) {
				return map[string]any{
					"status":  0,
					"message": []string{validFor(s.Site)},
					"site":    map[string]string{"id": s.Site.ID, "name": s.Site.Name},
					"token":   map[string]string{"id": s.TokenID},
				}, nil
			},
		}},
	}
}

// validFor returns the check hook's message for a valid token.
func validFor(s hook.Site) string {
	switch {
	case s.Name != "":
		return fmt.Sprintf("The token is valid for the site %q.", s.Name)
	case s.ID != "":
		return fmt.Sprintf("The token is valid for the site %q.", s.ID)
	}
	return "The token is valid for this server, which serves no particular site."
}

func index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path != "/" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "{\"status\": 404, \"message\": [\"No hook at this path. GET / lists the hooks.\"]}\n")
		return
	}
	fmt.Fprintf(w, "{\"hooks\": [%q, %q]}\n", SomeHookPath, CheckHookPath)
}
