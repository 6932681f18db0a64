// Package fakepg is a PostgreSQL protocol peer for tests of password
// handling: the local test server trusts every client, so it never asks
// for a password.
package fakepg

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Server is a PostgreSQL protocol peer on 127.0.0.1 that requests a
// cleartext password from every client and rejects it with SQLSTATE 28P01,
// as a server with password authentication does for a wrong password.
type Server struct {
	// Addr is the host:port the server listens on.
	Addr string
	// echo makes the error message quote the password it received, as a
	// careless server or proxy might, to test that clients scrub it.
	echo bool

	mu        sync.Mutex
	passwords []string
}

// Start starts a Server and stops it when t ends.
func Start(t testing.TB, echo bool) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.1 failed: %v", err)
	}
	f := &Server{Addr: ln.Addr().String(), echo: echo}

	var conns sync.WaitGroup
	var accept sync.WaitGroup
	accept.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { f.serve(conn) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		accept.Wait()
		conns.Wait()
	})
	return f
}

// received returns the passwords clients sent.
// Received returns the passwords that clients sent.
func (f *Server) Received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.passwords...)
}

func (f *Server) serve(conn net.Conn) {
	defer conn.Close()
	// The deadline only stops a stuck client from holding up the test.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	backend := pgproto3.NewBackend(conn, conn)

	var user string
	for user == "" {
		msg, err := backend.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			// "N" declines encryption; the client then sends its startup
			// message in clear.
			if _, err := conn.Write([]byte("N")); err != nil {
				return
			}
		case *pgproto3.StartupMessage:
			user = m.Parameters["user"]
		default:
			return
		}
	}

	backend.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := backend.Flush(); err != nil {
		return
	}
	if err := backend.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	msg, err := backend.Receive()
	if err != nil {
		return
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return
	}
	f.mu.Lock()
	f.passwords = append(f.passwords, pm.Password)
	f.mu.Unlock()

	message := fmt.Sprintf("password authentication failed for user %q", user)
	if f.echo {
		message += " with password " + pm.Password
	}
	backend.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "28P01", Message: message})
	backend.Flush()
}
