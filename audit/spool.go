package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// Spool is a local file of audit events that could not be written to the
// database, one JSON object per line. Events keep their ids in the spool,
// so replaying an event that was in fact stored before a crash finds its
// id taken and skips it: nothing is lost and nothing is stored twice.
//
// The file is created with mode 0600 and locked, so that two processes
// cannot share one spool. A Spool is safe for concurrent use.
type Spool struct {
	path string
	mu   sync.Mutex
	file *os.File
	n    int
}

// OpenSpool opens or creates the spool at path and locks it. Events left
// by an earlier process are kept for [Spool.Replay].
func OpenSpool(path string) (*Spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: opening the spool failed: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: the spool %s is in use by another process: %w", path, err)
	}
	s := &Spool{path: path, file: f}
	events, err := s.readAll()
	if err != nil {
		f.Close()
		return nil, err
	}
	s.n = len(events)
	return s, nil
}

// Path returns the spool's file name.
func (s *Spool) Path() string { return s.path }

// Len returns the number of events in the spool.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Append adds events to the spool and syncs the file, so that they
// survive a crash.
func (s *Spool) Append(events []Event) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.file.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if _, err := s.file.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("audit: writing to the spool failed: %w", err)
	}
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("audit: syncing the spool failed: %w", err)
	}
	s.n += len(events)
	return nil
}

// Replay writes the spooled events through w in batches of up to
// [DefaultMaxBatch]. Events whose id is taken are taken to be stored
// already. The spool is emptied once every event is stored; when a write
// fails, the spool keeps every event and Replay returns the error, to be
// called again later. It returns the number of events stored.
func (s *Spool) Replay(write func(batch []Event) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, err := s.readAll()
	if err != nil || len(events) == 0 {
		return 0, err
	}
	for start := 0; start < len(events); start += DefaultMaxBatch {
		end := min(start+DefaultMaxBatch, len(events))
		if err := write(events[start:end]); err != nil {
			return 0, err
		}
	}
	if err := s.file.Truncate(0); err != nil {
		return 0, fmt.Errorf("audit: emptying the spool failed: %w", err)
	}
	if err := s.file.Sync(); err != nil {
		return 0, fmt.Errorf("audit: syncing the spool failed: %w", err)
	}
	s.n = 0
	return len(events), nil
}

// Close unlocks and closes the spool file. Its events stay in it.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Close()
}

// readAll reads every event. A line that does not parse is skipped: only a
// write cut short by a crash leaves one, and Append had not returned for it.
func (s *Spool) readAll() ([]Event, error) {
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []Event
	sc := bufio.NewScanner(s.file)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				continue
			}
			return nil, fmt.Errorf("audit: reading the spool %s failed: %w", s.path, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: reading the spool %s failed: %w", s.path, err)
	}
	return out, nil
}
