// Package pionlog routes pion's logs through a log/slog logger, so they obey
// the process's level and format, and throttles them per scope and level: a
// peer that provokes one error per packet (an unknown SSRC on every packet)
// must not flood the log.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/logging"

	"github.com/rtcio-gateway/rtcio-gateway/internal/logthrottle"
)

// Factory is a pion logging.LoggerFactory writing to a slog.Logger. Set it
// as a SettingEngine's LoggerFactory.
type Factory struct {
	log *slog.Logger
	// Watch, when set, is asked for every new logger whether something
	// should see the error messages of that logger (before throttling and
	// whatever the level):
	// pion logs some abuse only as errors, one per occurrence.
	Watch func(scope string) func(msg string)

	mu        sync.Mutex
	throttles map[throttleKey]*logthrottle.Throttle
}

type throttleKey struct {
	scope string
	level slog.Level
}

// New returns a factory logging to log with a "pion" attribute naming the
// scope.
func New(log *slog.Logger) *Factory {
	if log == nil {
		log = slog.Default()
	}
	return &Factory{log: log, throttles: make(map[throttleKey]*logthrottle.Throttle)}
}

// NewLogger implements logging.LoggerFactory. Loggers of one scope share
// their throttles, whatever connection they belong to.
func (f *Factory) NewLogger(scope string) logging.LeveledLogger {
	l := &logger{f: f, scope: scope, log: f.log.With("pion", scope)}
	if f.Watch != nil {
		l.watch = f.Watch(scope)
	}
	return l
}

func (f *Factory) throttle(scope string, level slog.Level) *logthrottle.Throttle {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := throttleKey{scope, level}
	t := f.throttles[k]
	if t == nil {
		t = &logthrottle.Throttle{}
		f.throttles[k] = t
	}
	return t
}

type logger struct {
	f     *Factory
	scope string
	log   *slog.Logger
	watch func(msg string)
}

func (l *logger) emit(level slog.Level, msg string) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.f.throttle(l.scope, level).Do(func(suppressed int) {
		l.log.Log(context.Background(), level, msg, "suppressed", suppressed)
	})
}

// emitf formats only for a level that is on: formatting costs, and pion
// passes some values (tracks, receivers) that its own goroutines modify
// while it logs them at debug level, which its default logger never
// formats unless asked to.
func (l *logger) emitf(level slog.Level, format string, args []any) {
	if l.log.Enabled(context.Background(), level) {
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

func (l *logger) error(msg string) {
	if l.watch != nil {
		l.watch(msg)
	}
	l.emit(levelError, msg)
}

// pion's levels land one step lower in ours: pion reports a remote peer's
// misbehaviour as its own error and narrates every state change as info,
// while the gateway's info is for what an operator follows. So pion's
// trace and debug become below debug, info debug, warn info, error warn.
const (
	levelTrace = slog.LevelDebug - 4
	levelDebug = slog.LevelDebug - 2
	levelInfo  = slog.LevelDebug
	levelWarn  = slog.LevelInfo
	levelError = slog.LevelWarn
)

func (l *logger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l *logger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args) }
func (l *logger) Debug(msg string)                  { l.emit(levelDebug, msg) }
func (l *logger) Debugf(format string, args ...any) { l.emitf(levelDebug, format, args) }
func (l *logger) Info(msg string)                   { l.emit(levelInfo, msg) }
func (l *logger) Infof(format string, args ...any)  { l.emitf(levelInfo, format, args) }
func (l *logger) Warn(msg string)                   { l.emit(levelWarn, msg) }
func (l *logger) Warnf(format string, args ...any)  { l.emitf(levelWarn, format, args) }
func (l *logger) Error(msg string)                  { l.error(msg) }
func (l *logger) Errorf(format string, args ...any) { l.error(fmt.Sprintf(format, args...)) }
