// Command bench compares, in one run over loopback, the throughput and
// latency of the same form post against a bare net/http handler, the hook
// of gs-auth-token serve with and without its token cache, and the same
// route behind echo's KeyAuth middleware; then good clients beside a flood
// of wrong tokens; then, on PostgreSQL, how long a revocation takes to be
// seen by other instances.
//
// Every server runs in a process of its own, so that its peak resident
// memory can be read from /proc, and the load comes from this process with
// keep-alive connections. The scenarios take turns over several rounds, so
// that a drift in the machine's speed affects them alike, and each figure
// is the median of its rounds. The last line is "ratio hook/bare = X.XX".
//
// Usage:
//
//	go run . [-store sqlite|postgresql] [-dsn DSN] [-duration 5s] [-concurrency 16]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	store       string
	dsn         string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	revocations int
	flooders    int
	rounds      int
	serveBin    string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-role" {
		os.Exit(runRole(os.Args[2:]))
	}
	var cfg config
	flag.StringVar(&cfg.store, "store", "sqlite", "store of the hook servers: sqlite or postgresql")
	flag.StringVar(&cfg.dsn, "dsn", "", "PostgreSQL server for -store postgresql (default $GS_AUTH_TOKEN_TEST_DSN, then postgres://postgres@127.0.0.1:5432/test); each run uses a schema of its own")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "measured time of each scenario in each round")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds; each runs every scenario once, in turn, and the median round is reported")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time before each scenario")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "concurrent clients, each with its own keep-alive connection")
	flag.IntVar(&cfg.revocations, "revocations", 50, "revocations timed on PostgreSQL")
	flag.IntVar(&cfg.flooders, "flood-clients", 4, "clients sending wrong tokens from 127.0.0.2 in the flood scenario")
	flag.StringVar(&cfg.serveBin, "serve-bin", "", "gs-auth-token binary to benchmark (default: built from the parent directory)")
	flag.Parse()

	if cfg.store != "sqlite" && cfg.store != "postgresql" {
		fmt.Fprintf(os.Stderr, "bench: error: invalid -store %q: use sqlite or postgresql\n", cfg.store)
		os.Exit(2)
	}
	if cfg.concurrency < 1 || cfg.duration <= 0 || cfg.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: error: -concurrency, -duration and -rounds must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
		os.Exit(1)
	}
}
