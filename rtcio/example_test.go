package rtcio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/rtcio"
)

// Two Go peers meet and exchange a ctrl event over their data channel.
// They reach each other through wire, the smallest signaling a Socket can
// run on (see below); against a real server, rtcio.Dial(ctx, url, opts)
// gives the same Socket, and a join-room makes the server send the
// init-offer that starts the connection.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api, _ := rtcio.LoopbackAPI()
	w := newWire()
	defer w.close()

	alice, err := rtcio.New(w.end("alice"), rtcio.Options{API: api})
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := rtcio.New(w.end("bob"), rtcio.Options{API: api})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	got := make(chan string, 1)
	bob.On("greet", func(e *rtcio.Event) {
		var who string
		_ = e.Decode(0, &who)
		got <- who
	})
	// Send when the peer connection's ctrl channel is open.
	alice.On(rtcio.EventPeerConnect, func(e *rtcio.Event) { _ = alice.Emit("greet", "alice") })

	// What a server does when bob joins a room alice is in.
	w.deliver("alice", "#rtcio:init-offer", map[string]any{"source": "bob"})
	select {
	case who := <-got:
		fmt.Println("bob was greeted by", who)
	case <-ctx.Done():
		fmt.Println("timeout")
	}
	// Output: bob was greeted by alice
}

// wire is an in-process rtc.io signaling server for named sockets: each
// #rtcio:message goes to its target, JSON-encoded on the way as over
// socket.io, and each socket's events arrive in order on one goroutine.
type wire struct {
	mu   sync.Mutex
	ends map[string]*wireEnd
	wg   sync.WaitGroup
}

type wireEnd struct {
	w    *wire
	id   string
	in   chan [2]any // event name, args
	mu   sync.Mutex
	subs map[int]func(string, []any)
	next int
}

func newWire() *wire { return &wire{ends: make(map[string]*wireEnd)} }

func (w *wire) end(id string) *wireEnd {
	e := &wireEnd{w: w, id: id, in: make(chan [2]any, 256), subs: make(map[int]func(string, []any))}
	w.mu.Lock()
	w.ends[id] = e
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for ev := range e.in {
			e.mu.Lock()
			subs := make([]func(string, []any), 0, len(e.subs))
			for _, f := range e.subs {
				subs = append(subs, f)
			}
			e.mu.Unlock()
			for _, f := range subs {
				f(ev[0].(string), ev[1].([]any))
			}
		}
	}()
	return e
}

// deliver sends a server event to socket id.
func (w *wire) deliver(id, event string, payload any) {
	var decoded any
	b, _ := json.Marshal(payload)
	_ = json.Unmarshal(b, &decoded)
	w.mu.Lock()
	e := w.ends[id]
	w.mu.Unlock()
	if e != nil {
		e.in <- [2]any{event, []any{decoded}}
	}
}

func (w *wire) close() {
	w.mu.Lock()
	for _, e := range w.ends {
		close(e.in)
	}
	w.ends = nil
	w.mu.Unlock()
	w.wg.Wait()
}

// ID, Emit and Subscribe make a wireEnd an rtcio.Signaling.
func (e *wireEnd) ID() string { return e.id }

func (e *wireEnd) Emit(event string, args ...any) error {
	if event != "#rtcio:message" || len(args) == 0 {
		return nil
	}
	var msg struct {
		Target string `json:"target"`
	}
	b, err := json.Marshal(args[0])
	if err != nil {
		return err
	}
	_ = json.Unmarshal(b, &msg)
	e.w.deliver(msg.Target, event, args[0])
	return nil
}

func (e *wireEnd) Subscribe(f func(string, []any)) func() {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.next
	e.next++
	e.subs[id] = f
	return func() {
		e.mu.Lock()
		delete(e.subs, id)
		e.mu.Unlock()
	}
}
