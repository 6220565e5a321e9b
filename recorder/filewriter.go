package recorder

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync"
)

// durationSlot is the payload of the Void element reserved in the segment
// Info for the Duration, which is only known at the end. A Void of 9 bytes
// (1-byte ID, 1-byte size) and a Duration holding a float64 (2-byte ID,
// 1-byte size) are both 11 bytes, so one replaces the other in place. The
// payload is distinctive so the slot is found again in the written header.
var durationSlot = []byte("rtcio-dur")

// headKeep is how much of the file start is kept in memory to find the
// duration slot: the EBML header, segment info and track entries.
const headKeep = 8 << 10

// fileWriter is the media file under one segment writer. ebml-go's writer
// goroutine writes to it; the recording's goroutine flushes it. It buffers
// writes so the disk sees large writes, and its errors are sticky and
// swallowed: ebml-go stops its writer goroutine on the first error it sees,
// which would leave the next frame write blocked forever, so the writer
// always reports success and the recording polls Err instead.
type fileWriter struct {
	mu       sync.Mutex
	f        *os.File
	bw       *bufio.Writer
	size     int64
	head     []byte
	err      error
	sync     bool
	duration float64 // milliseconds, patched in at Close when > 0
	closed   bool
}

func newFileWriter(f *os.File, sync bool) *fileWriter {
	return &fileWriter{f: f, bw: bufio.NewWriterSize(f, 64<<10), sync: sync}
}

func (w *fileWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.head) < headKeep {
		w.head = append(w.head, b[:min(len(b), headKeep-len(w.head))]...)
	}
	if w.err != nil || w.closed {
		return len(b), nil
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("media file: %w", err)
		return len(b), nil
	}
	w.size += int64(len(b))
	return len(b), nil
}

// WriteAt lets ebml-go fill the space reserved for Cues when it finishes.
func (w *fileWriter) WriteAt(b []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.closed {
		return len(b), nil
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("media file: %w", err)
		return len(b), nil
	}
	if _, err := w.f.WriteAt(b, off); err != nil {
		w.err = fmt.Errorf("media file at %d: %w", off, err)
	}
	return len(b), nil
}

// Flush hands buffered data to the operating system (and to the disk with
// Sync), and returns the first error the file has seen.
func (w *fileWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

func (w *fileWriter) flushLocked() {
	if w.err != nil || w.closed {
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("media file: %w", err)
		return
	}
	if w.sync {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("media file: %w", err)
		}
	}
}

// setDuration records the duration to write into the header at Close.
func (w *fileWriter) setDuration(ms float64) {
	w.mu.Lock()
	w.duration = ms
	w.mu.Unlock()
}

// Close is called by ebml-go once the segment is finished: it flushes, puts
// the duration in its slot, syncs and closes the file.
func (w *fileWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.flushLocked()
	if w.err == nil && w.duration > 0 {
		w.patchDuration()
	}
	if w.err == nil {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("media file: %w", err)
		}
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("media file: %w", err)
	}
	w.closed = true
	return nil
}

func (w *fileWriter) patchDuration() {
	slot := append([]byte{0xEC, 0x80 | byte(len(durationSlot))}, durationSlot...)
	i := bytes.Index(w.head, slot)
	if i < 0 {
		return
	}
	var el [11]byte
	el[0], el[1], el[2] = 0x44, 0x89, 0x88 // Duration, 8-byte float
	binary.BigEndian.PutUint64(el[3:], math.Float64bits(w.duration))
	if _, err := w.f.WriteAt(el[:], int64(i)); err != nil {
		w.err = fmt.Errorf("media file duration: %w", err)
	}
}

// Size returns the bytes written so far, buffered ones included.
func (w *fileWriter) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Err returns the first error the file has seen.
func (w *fileWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
