package soak

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
	"github.com/gs-auth-token/gs-auth-token/internal/testproxy"
	"github.com/gs-auth-token/gs-auth-token/token"
)

// Timing of the run.
const (
	// durationEnv names the environment variable that sets the duration
	// of the traffic.
	durationEnv     = "GS_AUTH_TOKEN_SOAK"
	defaultDuration = 30 * time.Second
	// minDuration leaves room for a rotation and an outage.
	minDuration = 15 * time.Second

	// staleness is the server's --cache-staleness.
	staleness = 2 * time.Second
	// grace is the --grace of every rotation.
	grace = 2 * time.Second
	// rotateEvery is the time between rotations of the rotated client.
	rotateEvery = 10 * time.Second
	// outage is how long the proxy stays cut.
	outage = 3 * time.Second
	// recoverySlack is how long after staleness past the restore a 503
	// is still allowed.
	recoverySlack = 2 * time.Second
	// lateSwitch is how long after a rotation the late client keeps
	// sending the old token. It is past the grace period and the
	// staleness bound, so the client gets 401s and the test can check that
	// the old token is rejected once the server must know of the rotation.
	lateSwitch = grace + staleness + 2*time.Second

	// pause is the time each client waits between requests, to keep the
	// load modest on a small machine that runs other tests too.
	pause = 10 * time.Millisecond
	// requestTimeout bounds each request and each command.
	requestTimeout = 30 * time.Second
)

// Names of the tokens the test creates.
const (
	rotatedName = "soak-alpha"
	steadyName  = "soak-beta"
	revokedName = "soak-revoked"
)

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the soak test in short mode")
	}
	duration := soakDuration(t)
	direct := testdb.Postgres(t)
	if _, err := command(bins.Tool, "migrate", "--dsn", direct); err != nil {
		t.Fatal(err)
	}
	// GroupServer's plain-text token, so that wrong plain tokens are
	// compared against a stored one.
	if _, err := command(bins.Create, direct); err != nil {
		t.Fatal(err)
	}
	rotatedTok := newToken(t, "create", "--dsn", direct, "--name", rotatedName)
	steadyTok := newToken(t, "create", "--dsn", direct, "--name", steadyName)
	revokedTok := newToken(t, "create", "--dsn", direct, "--name", revokedName)
	if _, err := command(bins.Tool, "revoke", revokedName, "--dsn", direct); err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := testproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	spool := filepath.Join(t.TempDir(), "audit.spool")
	srv := startServer(t, "--dsn", u.String(), "--cache-staleness", staleness.String(), "--audit-spool", spool,
		"--throttle-failures", "0", "--log-level", "info")
	pid := srv.cmd.Process.Pid
	rssStart := mustRSS(t, pid)

	// Eight clients, the rotations, the outage and the memory samples run
	// until the deadline.
	r := &run{base: srv.base, start: time.Now(), outages: &outages{}, tally: newTally(),
		rotated: &rotatedClient{current: rotatedTok, replaced: map[string]rotation{}}}
	deadline := r.start.Add(duration)
	var wg sync.WaitGroup
	clients := []struct {
		kind string
		next func() string
	}{
		{kindRotated, r.rotated.token},
		{kindRotated, r.rotated.token},
		{kindLate, func() string { return r.rotated.lateToken(time.Now()) }},
		{kindSteady, func() string { return steadyTok }},
		{kindSteady, func() string { return steadyTok }},
		{kindWrong, wrongTokens(tokenID(steadyTok))},
		{kindWrong, wrongTokens(tokenID(steadyTok))},
		{kindRevoked, func() string { return revokedTok }},
	}
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(c.kind, deadline, c.next)
		}()
	}

	var rotations atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rotations.Store(int64(r.rotate(t, direct, deadline)))
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.cutProxy(proxy, r.start.Add(duration/2-outage/2))
	}()
	var rssMax atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rssMax.Store(int64(sampleRSS(pid, deadline)))
	}()

	warmup := min(max(duration/6, 3*time.Second), time.Minute)
	time.Sleep(time.Until(r.start.Add(warmup)))
	rssWarm := mustRSS(t, pid)
	wg.Wait()
	rssEnd := mustRSS(t, pid)
	srv.stop(t)

	// The server has stopped, so every audit event it took is stored.
	report(t, r, rotations.Load())
	t.Logf("serve's VmRSS: %d kB at the start, %d kB after %s of warm-up, %d kB at the end, %d kB at most",
		rssStart, rssWarm, warmup, rssEnd, max(rssMax.Load(), int64(rssEnd)))
	checkResponses(t, r, rotations.Load())
	checkAudit(t, r, direct, spool, srv.log)
	t.Run("memory", func(t *testing.T) {
		if limit := 2*rssWarm + 20*1024; rssEnd >= limit {
			t.Errorf("VmRSS at the end = %d kB, want below %d kB (twice the %d kB after warm-up, plus 20 MB)", rssEnd, limit, rssWarm)
		}
	})
}

// wrongTokens returns a source of wrong tokens of three sorts in turn. The
// first is a plain string. The second is a well-formed token of an unknown
// id, which the server looks up in the database. The third is a
// well-formed token with a known id and a wrong secret.
func wrongTokens(knownID string) func() string {
	n := 0
	tag := randomHex(4)
	return func() string {
		n++
		switch n % 3 {
		case 0:
			return fmt.Sprintf("WRONG-soak-%s-%d", tag, n)
		case 1:
			return forge(randomID())
		}
		return forge(knownID)
	}
}

// rotate rotates the rotated client's token every rotateEvery until the
// deadline, with the built command, and returns the number of rotations.
func (r *run) rotate(t *testing.T, dsn string, deadline time.Time) int {
	n := 0
	for next := r.start.Add(rotateEvery); next.Before(deadline); next = next.Add(rotateEvery) {
		time.Sleep(time.Until(next))
		started := time.Now()
		out, err := command(bins.Tool, "rotate", rotatedName, "--grace", grace.String(), "--dsn", dsn)
		if err != nil {
			t.Errorf("rotation at %s: %v", started.Sub(r.start).Round(time.Millisecond), err)
			continue
		}
		tok := strings.TrimSpace(out)
		if _, err := token.ParseID(tok); err != nil {
			t.Errorf("gs-auth-token rotate printed %q, not one token", out)
			continue
		}
		r.rotated.rotate(tok, rotation{started: started, ended: time.Now()})
		n++
	}
	return n
}

// cutProxy cuts the proxy at the given time for the outage, then restores
// it.
func (r *run) cutProxy(proxy *testproxy.Proxy, at time.Time) {
	time.Sleep(time.Until(at))
	r.outages.start(time.Now())
	proxy.Cut()
	time.Sleep(outage)
	proxy.Restore()
	r.outages.end(time.Now())
}

// mustRSS returns the resident set size of process pid, in kB.
func mustRSS(t *testing.T, pid int) int {
	t.Helper()
	kb, err := rssKB(pid)
	if err != nil {
		t.Fatalf("reading the memory of serve failed: %v", err)
	}
	return kb
}

// sampleRSS reads the resident set size of process pid every 5 seconds
// until the deadline and returns the largest, in kB.
func sampleRSS(pid int, deadline time.Time) int {
	peak := 0
	for time.Now().Before(deadline) {
		if kb, err := rssKB(pid); err == nil {
			peak = max(peak, kb)
		}
		time.Sleep(min(5*time.Second, time.Until(deadline)))
	}
	return peak
}

// report logs the counts of the run.
func report(t *testing.T, r *run, rotations int64) {
	t.Helper()
	r.tally.mu.Lock()
	defer r.tally.mu.Unlock()
	keys := make([]string, 0, len(r.tally.responses))
	total := 0
	for k, n := range r.tally.responses {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, r.tally.responses[k])
	}
	t.Logf("%d responses in %s:%s", total, time.Since(r.start).Round(time.Second), b.String())
	t.Logf("401 responses by expected audit code: %v; rotations: %d; outages: %d", r.tally.unauthorized, rotations, len(r.outages.cuts))
}

// checkResponses checks that no response broke a rule, and that every
// kind of traffic ran, so that a clean result means something.
func checkResponses(t *testing.T, r *run, rotations int64) {
	t.Helper()
	t.Run("responses", func(t *testing.T) {
		r.tally.mu.Lock()
		defer r.tally.mu.Unlock()
		for _, kind := range violationKinds {
			if n := r.tally.violations[kind]; n > 0 {
				t.Errorf("%s: %d times; first: %s", kind, n, strings.Join(r.tally.examples[kind], "; "))
			}
		}
	})
	t.Run("coverage", func(t *testing.T) {
		r.tally.mu.Lock()
		defer r.tally.mu.Unlock()
		for _, key := range []string{"rotated 200", "late 200", "steady 200", "wrong 401", "revoked 401"} {
			if r.tally.responses[key] == 0 {
				t.Errorf("no response %q", key)
			}
		}
		unavailable := 0
		for k, n := range r.tally.responses {
			if strings.HasSuffix(k, " 503") {
				unavailable += n
			}
		}
		if unavailable == 0 {
			t.Error("no response was 503, so the outage never made the server fail closed")
		}
		if r.tally.unauthorized["2"] == 0 {
			t.Error("no old token was rejected after its grace period")
		}
		if rotations == 0 {
			t.Error("no rotation succeeded")
		}
	})
}

// checkAudit compares the 401 responses with the audit events of the hook
// page, which the stopped server must all have stored: none missing, none
// extra, each with the code of its cause.
func checkAudit(t *testing.T, r *run, dsn, spool string, log *serverLog) {
	t.Helper()
	codes := auditCodes(t, dsn)
	r.tally.mu.Lock()
	responded := maps.Clone(r.tally.unauthorized)
	r.tally.mu.Unlock()
	rejected, stored := 0, 0
	for _, n := range responded {
		rejected += n
	}
	for _, n := range codes {
		stored += n
	}
	t.Logf("audit rows of the hook page by code: %v; 401 responses: %d", codes, rejected)

	t.Run("audit", func(t *testing.T) {
		if stored != rejected {
			t.Errorf("audit rows = %d, want %d, one per 401 response (%+d)", stored, rejected, stored-rejected)
		}
		for code, what := range map[string]string{"1": "wrong", "2": "old", "3": "revoked"} {
			if codes[code] != responded[code] {
				t.Errorf("audit rows of code %s = %d, want %d, one per 401 for a %s token", code, codes[code], responded[code], what)
			}
		}
		info, err := os.Stat(spool)
		if err != nil {
			t.Fatalf("reading the spool failed: %v", err)
		}
		if info.Size() != 0 {
			t.Errorf("the audit spool contains %d bytes after the stop, want none left to replay", info.Size())
		}

		log.mu.Lock()
		defer log.mu.Unlock()
		for _, msg := range lostEventMessages {
			if n := log.lost[msg]; n > 0 {
				t.Errorf("serve logged %q %d times", msg, n)
			}
		}
	})
}

// soakDuration returns the duration of the traffic: GS_AUTH_TOKEN_SOAK, or
// 30 seconds.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv(durationEnv)
	if v == "" {
		return defaultDuration
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("invalid %s=%q: use a Go duration such as 10m", durationEnv, v)
	}
	if d < minDuration {
		t.Fatalf("invalid %s=%q: the minimum is %s, which one rotation and one outage need", durationEnv, v, minDuration)
	}
	return d
}

// command runs gs-auth-token or another built command with args and
// returns its standard output, or fails with its standard error.
func command(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s failed: %v: %s", bin, args[0], err, stderr.String())
	}
	return stdout.String(), nil
}

// newToken runs a command that prints one token and returns the token.
func newToken(t *testing.T, args ...string) string {
	t.Helper()
	out, err := command(bins.Tool, args...)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	if _, err := token.ParseID(tok); err != nil {
		t.Fatalf("gs-auth-token %s printed %q, not one token", args[0], out)
	}
	return tok
}

// randomHex returns 2n random hexadecimal digits.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// forge returns a well-formed token with the given public id and a random
// secret, which matches no stored token.
func forge(id string) string {
	body := token.Prefix + id + "_" + randomHex(token.SecretLength/2)
	n := crc32.ChecksumIEEE([]byte(body))
	var sum [token.ChecksumLength]byte
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = token.Alphabet[n%62]
		n /= 62
	}
	return body + string(sum[:])
}

// rssKB returns the resident set size of process pid, in kB.
func rssKB(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.Atoi(fields[0])
		}
	}
	return 0, errors.New("no VmRSS line in /proc/" + strconv.Itoa(pid) + "/status")
}

// auditCodes counts the audit events of the hook page by event code.
func auditCodes(t *testing.T, dsn string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to read the audit trail failed: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_code, count(*) FROM audit_event
		WHERE instance_datum LIKE '%/some-hook.json' GROUP BY event_code`)
	if err != nil {
		t.Fatalf("reading audit_event failed: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var code string
		var n int
		if err := rows.Scan(&code, &n); err != nil {
			t.Fatal(err)
		}
		out[code] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading audit_event failed: %v", err)
	}
	return out
}

// randomID returns a random public id, which names no stored token.
func randomID() string {
	b := make([]byte, token.IDLength)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = token.Alphabet[int(b[i])%len(token.Alphabet)]
	}
	return string(b)
}

// tokenID returns the public id of a token in the new format.
func tokenID(tok string) string {
	return tok[len(token.Prefix) : len(token.Prefix)+token.IDLength]
}
