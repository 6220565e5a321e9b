package sfu

import (
	"encoding/json"
	"sync"
)

// metadataCalls shares one metadata request per published stream among the
// late joiners' replays that wait for it. When a burst of clients joins,
// every replay of a stream would otherwise ask its publisher again, so a
// publisher in a meeting of n answered n requests per stream per burst and,
// on a busy machine, answered some after the replay had given up. A replay
// that starts while a request for its stream is out waits for that answer:
// the publisher answers with its state after the request was sent, so the
// answer is as current for the later joiner as a request of its own.
type metadataCalls struct {
	mu    sync.Mutex
	calls map[streamKey]*metadataCall
}

type metadataCall struct {
	done   chan struct{}
	events map[string][]json.RawMessage
	err    error
}

// do returns the answer of the request for key in flight, or runs fetch.
func (m *metadataCalls) do(key streamKey, fetch func() (map[string][]json.RawMessage, error)) (map[string][]json.RawMessage, error) {
	m.mu.Lock()
	if c := m.calls[key]; c != nil {
		m.mu.Unlock()
		<-c.done
		return c.events, c.err
	}
	if m.calls == nil {
		m.calls = make(map[streamKey]*metadataCall)
	}
	c := &metadataCall{done: make(chan struct{})}
	m.calls[key] = c
	m.mu.Unlock()
	c.events, c.err = fetch()
	m.mu.Lock()
	delete(m.calls, key)
	m.mu.Unlock()
	close(c.done)
	return c.events, c.err
}
