package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gs-auth-token/gs-auth-token/store"
)

func run(ctx context.Context, cfg config) error {
	tmp, err := os.MkdirTemp("", "gs-auth-token-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	dsn, cleanup, err := prepareStore(ctx, cfg, tmp)
	if err != nil {
		return err
	}
	defer cleanup()
	admin, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.Migrate(ctx); err != nil {
		return err
	}
	tok, _, err := admin.CreateToken(ctx, "bench", "", 0)
	if err != nil {
		return err
	}
	serveBin := cfg.serveBin
	if serveBin == "" {
		if serveBin, err = buildServe(ctx, tmp); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	good := url.Values{"token": {tok}, "some": {""}}.Encode()
	bad := url.Values{"token": {"WRONG-bench-token"}, "some": {""}}.Encode()
	serve := func(extra ...string) func(addr string) *exec.Cmd {
		return func(addr string) *exec.Cmd {
			args := append([]string{"serve", "--listen", addr, "--dsn", dsn, "--log-level", "warn"}, extra...)
			return exec.Command(serveBin, args...)
		}
	}
	goodLoad := func(addr string) (result, result, error) {
		r, err := runLoad(ctx, loadSpec{url: "http://" + addr + "/some-hook.json", body: []byte(good),
			contentType: "application/x-www-form-urlencoded", clients: cfg.concurrency, want: []int{200}}, cfg.warmup, cfg.duration)
		return r, result{}, err
	}
	flooded := func(addr string) (result, result, error) {
		return floodLoad(ctx, cfg, addr, good, bad)
	}
	scenarios := []scenario{
		{name: nameBare, short: "bare", load: goodLoad, start: func(addr string) *exec.Cmd {
			cmd := exec.Command(self, "-role", "bare", "-listen", addr)
			cmd.Env = append(os.Environ(), tokenEnv+"="+tok)
			return cmd
		}},
		{name: nameHook, short: "hook", load: goodLoad, start: serve()},
		{name: nameNoCache, short: "no-cache", load: goodLoad, start: serve("--cache=false")},
		{name: nameEcho, short: "echo", load: goodLoad, start: func(addr string) *exec.Cmd {
			return exec.Command(self, "-role", "echo", "-listen", addr, "-dsn", dsn)
		}},
		// A server of its own, so that the throttle's state from the flood
		// never reaches the quiet scenario.
		{name: nameFlood, short: "flood", load: flooded, start: serve()},
	}

	fmt.Printf("store %s, %d clients, %d rounds of %s per scenario, each after %s of warm-up\n\n",
		cfg.store, cfg.concurrency, cfg.rounds, cfg.duration, cfg.warmup)
	procs := make([]*process, len(scenarios))
	for i, sc := range scenarios {
		p, err := startServer(ctx, sc.start)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		defer p.stop()
		procs[i] = p
	}
	rounds := make(map[string][]result)
	var floods []result
	for round := 0; round < cfg.rounds; round++ {
		// Each round starts one scenario later than the one before, so
		// that no scenario always follows the same one.
		for k := range scenarios {
			i := (k + round) % len(scenarios)
			sc := scenarios[i]
			r, flood, err := sc.load(procs[i].addr)
			if err != nil {
				return fmt.Errorf("%s: %w; server output: %s", sc.name, err, procs[i].output())
			}
			rounds[sc.name] = append(rounds[sc.name], r)
			if sc.name == nameFlood {
				floods = append(floods, flood)
			}
		}
		fmt.Printf("round %d, req/s:", round+1)
		for _, sc := range scenarios {
			fmt.Printf("  %s %.0f", sc.short, rounds[sc.name][round].rps)
		}
		fmt.Println()
	}
	fmt.Println()
	for i, sc := range scenarios {
		m := medianIndex(rounds[sc.name])
		r := rounds[sc.name][m]
		r.name = sc.name
		r.rssKB = procs[i].peakRSS()
		printResult(r)
		if sc.name == nameFlood {
			// The tarpit holds most flood requests past the end of a round,
			// so the flood is counted over all rounds.
			var answered, other int64
			for _, f := range floods {
				answered += f.requests
				other += f.failures
			}
			fmt.Printf("%-36s %9.1f req/s  (%d wrong-token requests answered 401 or 429 in %d rounds, %d otherwise)\n",
				"  the flood beside them", float64(answered)/(float64(len(floods))*cfg.duration.Seconds()), answered, len(floods), other)
		}
	}

	var revocation []time.Duration
	if cfg.store == "postgresql" {
		// The probe is refused on purpose after every revocation, which the
		// throttle would count against it, so these servers do not throttle.
		if revocation, err = measureRevocation(ctx, cfg, admin, serve("--throttle-failures", "0")); err != nil {
			return fmt.Errorf("revocation: %w", err)
		}
	}
	report(rounds, revocation)
	return nil
}

// Names of the scenarios.
const (
	nameBare    = "bare net/http"
	nameHook    = "hook, cache"
	nameNoCache = "hook, no cache"
	nameEcho    = "echo KeyAuth"
	nameFlood   = "hook, good clients beside a flood"
)

// scenario is one server and the load sent to it. load returns the good
// clients' measurements and, for the flood, the flood's.
type scenario struct {
	name string
	// short is the name in the line printed for each round.
	short string
	start func(addr string) *exec.Cmd
	load  func(addr string) (good, flood result, err error)
}

// floodLoad runs good clients from 127.0.0.1 beside cfg.flooders clients
// from 127.0.0.2 that send a wrong token as fast as they can, and returns
// the good clients' measurements and the flood's.
func floodLoad(ctx context.Context, cfg config, addr, good, bad string) (result, result, error) {
	u := "http://" + addr + "/some-hook.json"
	type outcome struct {
		r   result
		err error
	}
	floodDone := make(chan outcome, 1)
	go func() {
		r, err := runLoad(ctx, loadSpec{url: u, body: []byte(bad), contentType: "application/x-www-form-urlencoded",
			clients: cfg.flooders, localIP: "127.0.0.2", want: []int{401, 429}, cutAtEnd: true}, cfg.warmup, cfg.duration)
		floodDone <- outcome{r, err}
	}()
	r, err := runLoad(ctx, loadSpec{url: u, body: []byte(good), contentType: "application/x-www-form-urlencoded",
		clients: cfg.concurrency, localIP: "127.0.0.1", want: []int{200}}, cfg.warmup, cfg.duration)
	flood := <-floodDone
	if flood.err != nil && err == nil {
		err = flood.err
	}
	return r, flood.r, err
}

type process struct {
	cmd  *exec.Cmd
	addr string
	log  string
}

// startServer starts a server on a free loopback port and waits until it
// accepts connections.
func startServer(ctx context.Context, start func(addr string) *exec.Cmd) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := start(addr)
	logFile, err := os.CreateTemp("", "bench-server-*.log")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, addr: addr, log: logFile.Name()}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("server did not start on %s: %s", addr, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	return strings.TrimSpace(string(b))
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM).
func (p *process) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	os.Remove(p.log)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildServe builds gs-auth-token into dir, in the parent module that this
// module's replace directive names, so that it builds with that module's
// own dependencies.
func buildServe(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/gs-auth-token/gs-auth-token").Output()
	if err != nil {
		return "", fmt.Errorf("finding the gs-auth-token module failed (run bench from its directory): %w", err)
	}
	bin := filepath.Join(dir, "gs-auth-token")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gs-auth-token")
	cmd.Dir = strings.TrimSpace(string(out))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building gs-auth-token failed: %w: %s", err, out)
	}
	return bin, nil
}

// prepareStore returns the DSN of a new store for this run: a SQLite file
// in dir, or a new schema in the PostgreSQL server, dropped by cleanup.
func prepareStore(ctx context.Context, cfg config, dir string) (string, func(), error) {
	if cfg.store == "sqlite" {
		return "sqlite:" + filepath.Join(dir, "bench.db"), func() {}, nil
	}
	base := cfg.dsn
	if base == "" {
		base = os.Getenv("GS_AUTH_TOKEN_TEST_DSN")
	}
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "gsat_bench_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to %s failed: %w", store.Redact(base), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	cleanup := func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: warning: dropping schema %s failed: %v\n", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: warning: dropping schema %s failed: %v\n", schema, err)
		}
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, cleanup, nil
}

var errNotSeen = errors.New("revocation not seen within 10 s")

// medianIndex returns the index of the round with the median throughput.
func medianIndex(rs []result) int {
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(rs[a].rps, rs[b].rps) })
	return idx[len(idx)/2]
}
