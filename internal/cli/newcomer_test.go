package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadCommandsDoNotCreateSQLite(t *testing.T) {
	for _, args := range [][]string{{"list"}, {"audit"}, {"revoke", "x"}, {"rotate", "x"}} {
		t.Run(args[0], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "typo.db")
			var stderr bytes.Buffer
			code := Main(append(args, "--dsn", "sqlite:"+path), &bytes.Buffer{}, &stderr)
			if code != ExitFailed {
				t.Errorf("exit status = %d, want %d; stderr:\n%s", code, ExitFailed, stderr.String())
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s created the missing SQLite file (stat error %v)", args[0], err)
			}
			if !strings.Contains(stderr.String(), "does not exist") {
				t.Errorf("stderr does not say the file is missing:\n%s", stderr.String())
			}
		})
	}
}

func TestServeInvalidListen(t *testing.T) {
	var stderr bytes.Buffer
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "t.db")
	code := Main([]string{"serve", "--listen", "8080x", "--dsn", dsn}, &bytes.Buffer{}, &stderr)
	if code != ExitInvalid {
		t.Errorf("exit status = %d, want %d; stderr:\n%s", code, ExitInvalid, stderr.String())
	}
	if !strings.Contains(stderr.String(), "gs-auth-token serve --help") {
		t.Errorf("hint does not name the subcommand's help:\n%s", stderr.String())
	}
}

func TestServeBusyPortMakesNoToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "t.db")
	code := Main([]string{"serve", "--listen", ln.Addr().String(), "--dsn", dsn}, &stdout, &stderr)
	if code != ExitFailed {
		t.Errorf("exit status = %d, want %d; stderr:\n%s", code, ExitFailed, stderr.String())
	}
	if strings.Contains(stdout.String(), "gst_") {
		t.Errorf("a token was printed for a server that could not listen:\n%s", stdout.String())
	}
}
