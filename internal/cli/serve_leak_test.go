package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gs-auth-token/gs-auth-token/internal/testdb"
)

var servingAddr = regexp.MustCompile(`address=http://(127\.0\.0\.1:\d+)`)

// runServe runs serve in this process until ctx ends, after sending one
// good and one bad request, and returns when serve has returned.
func runServe(t *testing.T, ctx context.Context, cancel context.CancelFunc, dsn string) {
	t.Helper()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	a := &app{dsnFlag: dsn, stdout: outW, stderr: errW, getenv: func(string) string { return "" }}
	o := serveOptions{listen: "127.0.0.1:0", maxBody: 1 << 20, logLevel: "info", logFormat: "text",
		throttleFailures: 10, throttleWindow: time.Minute, metricsListen: "127.0.0.1:0", cache: true,
		staleness: 5 * time.Second, auditQueue: 100, auditSpool: filepath.Join(t.TempDir(), "audit.spool")}
	done := make(chan error, 1)
	go func() {
		done <- a.serve(ctx, o)
		outW.Close()
		errW.Close()
	}()

	tokens := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if m := regexp.MustCompile(`^    (gst_\S+)$`).FindStringSubmatch(sc.Text()); m != nil {
				tokens <- m[1]
			}
		}
	}()
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			if m := servingAddr.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
	}()

	var addr, tok string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("serve returned before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start within 20 s")
	}
	select {
	case tok = <-tokens:
	case <-time.After(5 * time.Second):
		t.Fatal("serve printed no first token")
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, v := range []string{tok, "wrong-token"} {
		resp, err := client.PostForm("http://"+addr+"/some-hook.json", url.Values{"token": {v}, "some": {""}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop within 40 s of its context ending")
	}
}

func TestServeLeavesNoGoroutines(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.New(t)
			if b.Name == "postgresql" {
				if code := Main([]string{"migrate", "--dsn", dsn}, io.Discard, io.Discard); code != 0 {
					t.Fatalf("migrate exited %d", code)
				}
			}
			before := goleak.IgnoreCurrent()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runServe(t, ctx, cancel, dsn)
			goleak.VerifyNone(t, before)
		})
	}
}
