// Command bench compares, in one run over loopback, the throughput and
// latency of the same form post against five servers. They are a bare
// net/http handler, the hook of gs-auth-token serve with and without its
// token cache, the same route behind echo's KeyAuth middleware, and the
// hook serving good clients beside a flood of wrong tokens. On PostgreSQL it
// then measures how long a revocation takes to be seen by other instances.
//
// Every server runs in a process of its own, so that its peak resident
// memory can be read from /proc, and the load comes from this process with
// keep-alive connections. The scenarios take turns, a short run each, over
// many rounds. Each ratio is taken within each round, between runs a few
// seconds apart, and the median over the rounds is printed. The drift of a
// shared machine's speed then cancels out. The last line is
// "ratio hook/bare = X.XX".
//
// Usage:
//
//	go run . [-store sqlite|postgresql] [-dsn DSN] [-rounds 16] [-duration 500ms] [-concurrency 16]
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
	flag.DurationVar(&cfg.duration, "duration", 500*time.Millisecond, "measured time of each scenario in each round")
	flag.IntVar(&cfg.rounds, "rounds", 16, "rounds; each runs every scenario once, in turn; more rounds give steadier ratios")
	flag.DurationVar(&cfg.warmup, "warmup", 100*time.Millisecond, "unmeasured time before each scenario in each round")
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
