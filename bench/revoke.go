package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/gs-auth-token/gs-auth-token/store"
)

// measureRevocation starts two serve instances on the PostgreSQL store and
// repeats a round cfg.revocations times. Each round makes a token, waits
// until both instances accept it, and revokes it through admin, as
// 'gs-auth-token revoke' would. It then times, for each instance, the delay
// from the revocation's return to the first rejection of the token.
func measureRevocation(ctx context.Context, cfg config, admin *store.Store, start func(addr string) *exec.Cmd) ([]time.Duration, error) {
	var instances []*process
	for range 2 {
		p, err := startServer(ctx, start)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		instances = append(instances, p)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	var seen []time.Duration
	for i := 0; i < cfg.revocations; i++ {
		name := fmt.Sprintf("revocation-%d", i)
		tok, _, err := admin.CreateToken(ctx, name, "", 0)
		if err != nil {
			return nil, err
		}
		for _, p := range instances {
			if _, err := waitStatus(ctx, hc, p.addr, tok, http.StatusOK); err != nil {
				return nil, fmt.Errorf("new token not accepted: %w", err)
			}
		}
		if _, err := admin.RevokeToken(ctx, name, ""); err != nil {
			return nil, err
		}
		revoked := time.Now()
		for _, p := range instances {
			at, err := waitStatus(ctx, hc, p.addr, tok, http.StatusUnauthorized)
			if err != nil {
				return nil, err
			}
			seen = append(seen, at.Sub(revoked))
		}
	}
	slices.Sort(seen)
	return seen, nil
}

// waitStatus posts tok to the instance every millisecond until it responds
// with status want, and returns the time it first did.
func waitStatus(ctx context.Context, hc *http.Client, addr, tok string, want int) (time.Time, error) {
	body := url.Values{"token": {tok}, "some": {""}}.Encode()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/some-hook.json", strings.NewReader(body))
		if err != nil {
			return time.Time{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := hc.Do(req)
		if err != nil {
			return time.Time{}, err
		}
		resp.Body.Close()
		if resp.StatusCode == want {
			return time.Now(), nil
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, errNotSeen
}
