package soak

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// keptLines is how many of the server's last log lines are kept for
// failure messages. A long run logs too much to keep it all.
const keptLines = 200

// lostEventMessages are log messages that mean an audit event was not
// stored.
var lostEventMessages = []string{"audit event dropped", "writing an audit event failed"}

var servingPattern = regexp.MustCompile(`msg="serving hooks" address=(http://127\.0\.0\.1:[0-9]+)`)

// serverLog receives the server's standard error: it keeps the last lines,
// counts the lines of lostEventMessages and finds the address.
type serverLog struct {
	mu      sync.Mutex
	partial []byte
	last    []string
	lines   int
	lost    map[string]int
	address string
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.add(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *serverLog) add(line string) {
	l.lines++
	if len(l.last) == keptLines {
		l.last = l.last[1:]
	}
	l.last = append(l.last, line)
	for _, msg := range lostEventMessages {
		if strings.Contains(line, msg) {
			l.lost[msg]++
		}
	}
	if m := servingPattern.FindStringSubmatch(line); m != nil && l.address == "" {
		l.address = m[1]
	}
}

// tail returns the last lines kept.
func (l *serverLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

func (l *serverLog) addr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.address
}

// server is a running "gs-auth-token serve".
type server struct {
	cmd    *exec.Cmd
	base   string
	log    *serverLog
	exited chan struct{}
	err    error
}

// startServer starts serve on a free loopback port with args and returns
// once it logs its address. The process is killed when t ends if it is
// still running.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	all := append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)
	s := &server{cmd: exec.Command(bins.Tool, all...), log: &serverLog{lost: map[string]int{}}, exited: make(chan struct{})}
	s.cmd.Dir = t.TempDir()
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting gs-auth-token serve failed: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("gs-auth-token serve (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
		}
	})

	deadline := time.After(30 * time.Second)
	for {
		if a := s.log.addr(); a != "" {
			s.base = a
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("gs-auth-token serve exited before serving: %v\nlog:\n%s", s.err, s.log.tail())
		case <-deadline:
			t.Fatalf("gs-auth-token serve logged no address within 30 s\nlog:\n%s", s.log.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits up to 40 seconds for the process to exit
// with status 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM failed: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("gs-auth-token serve did not stop within 40 s of SIGTERM; log:\n%s", s.log.tail())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("gs-auth-token serve exited with %d after SIGTERM; log:\n%s", code, s.log.tail())
	}
}
