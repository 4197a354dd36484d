package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("event store is closed")

// Store holds the events in memory and, when opened on a file, appends each
// one to it as a JSON line before acknowledging it. It is safe for
// concurrent use; Record is serialized, so counts have no gaps or repeats.
type Store struct {
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	events []Event
	seq    int
	counts map[Kind]int
	file   *os.File // nil when in memory
	path   string
	size   int64 // bytes of file holding complete records
	closed bool
}

// Open returns a store. With path "" it lives in memory only. Otherwise the
// file (JSON Lines, mode 0600, parent directories created 0700) is replayed
// and then appended to, with an fsync per event. A damaged last line - what
// a crash in the middle of a write leaves - is dropped with a warning and cut
// from the file; damage anywhere else is an error, because silently dropping
// recorded events would hide it. Only one process may have the file open.
func Open(path string, log *slog.Logger) (*Store, error) {
	s := &Store{log: log, now: time.Now, counts: map[Kind]int{}, events: []Event{}, path: path}
	if path == "" {
		return s, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory of %s: %w", path, err)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open event file: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock event file %s: %w", path, err)
	}
	if err := s.replay(f); err != nil {
		f.Close()
		return nil, err
	}
	if created {
		// Make the new directory entry itself durable.
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	s.file = f
	log.Info("event file opened", "path", path, "events", len(s.events), "created", created)
	return s, nil
}

// replay loads every event of f and leaves s.size at the end of the last
// complete one.
func (s *Store) replay(f *os.File) error {
	r := bufio.NewReader(f)
	for line := 1; ; line++ {
		raw, readErr := r.ReadBytes('\n')
		if len(raw) == 0 && readErr == io.EOF {
			return nil
		}
		if readErr != nil && readErr != io.EOF {
			return fmt.Errorf("read event file %s: %w", s.path, readErr)
		}
		e, decErr := decodeLine(raw)
		last := readErr == io.EOF
		if !last {
			_, peekErr := r.Peek(1)
			last = peekErr == io.EOF
		}
		switch {
		case decErr != nil && last:
			// A crash mid-append leaves a partial last line: drop it, and
			// cut it off so that the next append starts a clean line.
			s.log.Warn("event file: dropping damaged last line (interrupted write?)",
				"path", s.path, "line", line, "bytes", len(raw), "err", decErr)
			if err := f.Truncate(s.size); err != nil {
				return fmt.Errorf("truncate damaged last line of %s: %w", s.path, err)
			}
			return f.Sync()
		case decErr != nil:
			return fmt.Errorf("event file %s line %d: %w (only a damaged last line is tolerated; move the file aside to start afresh)",
				s.path, line, decErr)
		case readErr == io.EOF:
			// A complete event without its newline (a hand-edited file): keep it
			// and end the line, so the next append does not run into it.
			if _, err := f.Write([]byte{'\n'}); err != nil {
				return fmt.Errorf("terminate last line of %s: %w", s.path, err)
			}
			raw = append(raw, '\n')
		}
		s.events = append(s.events, e)
		s.seq = max(s.seq, e.Seq)
		s.counts[e.Kind] = max(s.counts[e.Kind], e.Count)
		s.size += int64(len(raw))
	}
}

func decodeLine(raw []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return Event{}, errors.New("invalid JSON: more than one value on the line")
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("invalid event: %w", err)
	}
	if e.Seq < 1 || e.Count < 1 || e.RecordedAt.IsZero() {
		return Event{}, errors.New("invalid event: missing seq, count or recordedAt")
	}
	return e, nil
}

// Record validates e, assigns its Seq, Count and RecordedAt, stores it (on
// disk first when the store has a file) and returns it. Nothing is stored
// when it returns an error; a *ValidationError means the client's fault.
func (s *Store) Record(ctx context.Context, e Event) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	// UTC, and no monotonic reading: what is returned now is exactly what a
	// replay of the file returns later.
	e.Start, e.End = utc(e.Start), utc(e.End)
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Event{}, ErrClosed
	}
	e.Seq = s.seq + 1
	e.Count = s.counts[e.Kind] + 1
	e.RecordedAt = s.now().UTC()
	if s.file != nil {
		if err := s.appendLine(e); err != nil {
			return Event{}, err
		}
	}
	s.events = append(s.events, e)
	s.seq = e.Seq
	s.counts[e.Kind] = e.Count
	return e, nil
}

// appendLine writes e and fsyncs; on failure it cuts the file back to the
// last complete record so that a half-written line never precedes a good one.
func (s *Store) appendLine(e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	line = append(line, '\n')
	if _, err = s.file.Write(line); err == nil {
		err = s.file.Sync()
	}
	if err != nil {
		if terr := s.file.Truncate(s.size); terr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", terr))
		}
		return fmt.Errorf("append to event file %s: %w", s.path, err)
	}
	s.size += int64(len(line))
	return nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// List returns every event in recording order.
func (s *Store) List() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Len is the number of events.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// Summary summarizes every event.
func (s *Store) Summary() Summary { return Summarize(s.List()) }

// Close releases the file (and its lock). Record fails afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.file == nil {
		return nil
	}
	return s.file.Close() // every record was already synced
}
