package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtcio-gateway/rtcio-gateway/internal/defaults"
)

// ErrClosed is returned by Notify after Close.
var ErrClosed = errors.New("webhook: notifier closed")

// Config configures a Notifier. Zero values take the defaults named on each
// field.
type Config struct {
	// URLs receive every event. Each must be an absolute http or https URL.
	URLs []string
	// Secret signs every delivery. It must not be empty: an unsigned
	// webhook lets anyone who learns the URL forge events.
	Secret string
	// QueueSize bounds the events waiting per URL (default 256).
	QueueSize int
	// MaxAttempts bounds the tries of one event to one URL (default 6).
	MaxAttempts int
	// MaxAge gives up on an event this long after it happened (default 10m).
	MaxAge time.Duration
	// InitialBackoff is the wait before the second try (default 1s); each
	// later wait doubles, up to MaxBackoff (default 1m), with jitter.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// RequestTimeout bounds one POST (default 10s).
	RequestTimeout time.Duration
	// DrainTimeout bounds how long Close keeps delivering queued events when
	// its context has no earlier deadline (default 5s).
	DrainTimeout time.Duration
	// Client sends the POSTs; by default a client of the Notifier's own, so
	// Close can release its idle connections.
	Client *http.Client
	// Logger receives drops and final failures (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) withDefaults() {
	defaults.Positive(&c.QueueSize, 256)
	defaults.Positive(&c.MaxAttempts, 6)
	defaults.Positive(&c.MaxAge, 10*time.Minute)
	defaults.Positive(&c.InitialBackoff, time.Second)
	defaults.Positive(&c.MaxBackoff, time.Minute)
	defaults.Positive(&c.RequestTimeout, 10*time.Second)
	defaults.Positive(&c.DrainTimeout, 5*time.Second)
	if c.MaxBackoff < c.InitialBackoff {
		c.MaxBackoff = c.InitialBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats counts what happened to events, summed over URLs (an event sent to
// two URLs counts twice).
type Stats struct {
	Delivered uint64 // a 2xx answer came back
	Retried   uint64 // attempts after the first
	Failed    uint64 // given up: final 4xx, attempts or age exhausted
	Dropped   uint64 // never tried or abandoned: queue full, or Close ran out of time
}

// Notifier delivers events to the configured URLs. It is safe for
// concurrent use.
type Notifier struct {
	cfg     Config
	secret  []byte
	client  *http.Client
	ownsCli bool
	targets []*target
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.RWMutex // guards closed against sends on closed queues
	closed bool

	delivered, retried, failed, dropped atomic.Uint64
}

// New starts a Notifier. Its senders stop when ctx is cancelled (abandoning
// what is queued) or when Close has drained them.
func New(ctx context.Context, cfg Config) (*Notifier, error) {
	cfg.withDefaults()
	if cfg.Secret == "" {
		return nil, errors.New("webhook: empty secret")
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: no URLs")
	}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("webhook: URL %q: %w", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook: URL %q: want an absolute http or https URL", raw)
		}
	}
	n := &Notifier{cfg: cfg, secret: []byte(cfg.Secret), client: cfg.Client}
	if n.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		n.client = &http.Client{
			Transport: tr,
			// A redirect would turn the POST into a GET or resend the
			// signed body somewhere nobody configured: treat it as a
			// final answer instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		n.ownsCli = true
	}
	ctx, n.cancel = context.WithCancel(ctx)
	for _, u := range cfg.URLs {
		t := &target{
			url:   u,
			queue: make(chan queued, cfg.QueueSize),
			log:   cfg.Logger.With("component", "webhook", "url", redactURL(u)),
		}
		n.targets = append(n.targets, t)
		n.wg.Go(func() { n.run(ctx, t) })
	}
	return n, nil
}

// queued is one event waiting for one URL; body is shared between URLs and
// never written after Notify.
type queued struct {
	id   string
	typ  EventType
	at   time.Time
	body []byte
}

type target struct {
	url   string
	queue chan queued
	log   *slog.Logger
}

// Notify queues ev for every URL and returns at once. It fills ev.ID and
// ev.CreatedAt when empty. An error means the event itself is unusable (or
// the Notifier is closed); a full queue is not an error for the caller: the
// event is dropped for that URL, logged and counted in Stats.Dropped.
func (n *Notifier) Notify(ev Event) error {
	body, err := prepare(&ev, time.Now())
	if err != nil {
		return err
	}
	q := queued{id: ev.ID, typ: ev.Type, at: ev.CreatedAt, body: body}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	for _, t := range n.targets {
		select {
		case t.queue <- q:
		default:
			n.dropped.Add(1)
			t.log.Warn("webhook queue full, event dropped", "event_id", q.id, "event_type", q.typ, "queue_size", cap(t.queue))
		}
	}
	return nil
}

// Stats returns the counters so far.
func (n *Notifier) Stats() Stats {
	return Stats{
		Delivered: n.delivered.Load(),
		Retried:   n.retried.Load(),
		Failed:    n.failed.Load(),
		Dropped:   n.dropped.Load(),
	}
}

// Close stops accepting events and keeps delivering the queued ones until
// they are done, ctx ends, or DrainTimeout passes, whichever is first; then
// it abandons the rest (counted as dropped) and returns once every sender
// goroutine has exited. It returns the number of events abandoned as an
// error when that is not zero.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.closed = true
	for _, t := range n.targets {
		close(t.queue)
	}
	n.mu.Unlock()

	before := n.dropped.Load()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(n.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-timer.C:
	}
	n.cancel()
	<-done
	if n.ownsCli {
		n.client.CloseIdleConnections()
	}
	if lost := n.dropped.Load() - before; lost > 0 {
		return fmt.Errorf("webhook: close abandoned %d queued deliveries", lost)
	}
	return nil
}

// redactURL keeps credentials and query tokens that some receivers put in
// their URLs out of the logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "invalid-url"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}
