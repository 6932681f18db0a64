package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// result is what one load run measured.
type result struct {
	name     string
	requests int64
	failures int64
	rps      float64
	p50, p99 time.Duration
	rssKB    int64
}

// loadSpec describes the requests of one run.
type loadSpec struct {
	url         string
	body        []byte
	contentType string
	clients     int
	// localIP is the source address of the clients, so that a flood and
	// good clients look like different hosts to the server.
	localIP string
	// want is the status that counts as success; others count as failures.
	want []int
	// cutAtEnd abandons the requests still waiting for a response when
	// the run ends, so that a flood held back by the server's tarpit does
	// not stretch the run.
	cutAtEnd bool
}

// runLoad sends spec's request from spec.clients goroutines, each with its
// own keep-alive connection, for warmup and then for duration, and returns
// the measurements of the second part.
func runLoad(ctx context.Context, spec loadSpec, warmup, duration time.Duration) (result, error) {
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)

	var mu sync.Mutex
	var all []time.Duration
	var failures int64
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < spec.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, failed, err := client(ctx, spec, measureFrom, end)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			failures += failed
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if len(all) == 0 && spec.cutAtEnd {
		// A flood held back for longer than the run gets no response in it.
		return result{failures: failures}, nil
	}
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request completed against %s", spec.url)
	}
	slices.Sort(all)
	return result{
		requests: int64(len(all)),
		failures: failures,
		rps:      float64(len(all)) / duration.Seconds(),
		p50:      percentile(all, 50),
		p99:      percentile(all, 99),
	}, nil
}

// client runs one client until end and returns the latencies of the
// requests that started after measureFrom and got a wanted status.
func client(ctx context.Context, spec loadSpec, measureFrom, end time.Time) ([]time.Duration, int64, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if spec.localIP != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(spec.localIP)}
	}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	// With cutAtEnd, reqCtx ends at the end of the run, and only ctx
	// ending is an error.
	reqCtx := ctx
	if spec.cutAtEnd {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	lat := make([]time.Duration, 0, 1<<16)
	var failures int64
	for {
		t0 := time.Now()
		if t0.After(end) {
			return lat, failures, nil
		}
		if ctx.Err() != nil {
			return lat, failures, ctx.Err()
		}
		req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, spec.url, bytes.NewReader(spec.body))
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Content-Type", spec.contentType)
		resp, err := hc.Do(req)
		if err != nil && spec.cutAtEnd && !time.Now().Before(end) {
			return lat, failures, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("request to %s failed: %w", spec.url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if t0.Before(measureFrom) {
			continue
		}
		if !slices.Contains(spec.want, resp.StatusCode) {
			failures++
			continue
		}
		lat = append(lat, time.Since(t0))
	}
}
