package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// Loader builds a Config from, in increasing priority: Default(), a YAML
// file, RTCIO_* environment variables, and command-line flags. Register its
// flags on a FlagSet, parse, then call Load:
//
//	fs := flag.NewFlagSet("rtcio-gateway", flag.ContinueOnError)
//	l := config.NewLoader()
//	l.RegisterFlags(fs)
//	if err := fs.Parse(os.Args[1:]); err != nil { ... }
//	cfg, err := l.Load(os.Environ())
//	for _, w := range l.Warnings() { logger.Warn(w) }
//
// A Loader is not safe for concurrent use; it is meant for a program's start.
type Loader struct {
	file      string
	overrides []override
	warnings  []string
}

// override is one key set on the command line, in command-line order so the
// last of several flags setting the same key wins.
type override struct {
	key, value, flag string
}

// NewLoader returns a Loader with no file and no flag overrides.
func NewLoader() *Loader { return &Loader{} }

// SetFile selects the YAML file, as --config does. An empty path means the
// one named by RTCIO_CONFIG, if any.
func (l *Loader) SetFile(path string) { l.file = path }

// Set overrides a key as --set key=value does, with the highest priority.
// It fails on an unknown key or a value of the wrong syntax.
func (l *Loader) Set(key, value string) error {
	return l.addOverride(key, value, "--set "+key)
}

func (l *Loader) addOverride(key, value, flagName string) error {
	lf, ok := lookupLeaf(configLeaves(), key)
	if !ok {
		return fmt.Errorf("unknown key %q%s", key, didYouMean(key, keyPaths()))
	}
	var scratch Config
	if err := parseText(fieldByIndex(&scratch, lf.index), value); err != nil {
		if isSecret(key) {
			return fmt.Errorf("%s: invalid value", key)
		}
		return fmt.Errorf("%s: %w", key, err)
	}
	l.overrides = append(l.overrides, override{key: key, value: value, flag: flagName})
	return nil
}

func keyPaths() []string {
	leaves := configLeaves()
	paths := make([]string, len(leaves))
	for i, lf := range leaves {
		paths[i] = lf.path
	}
	return paths
}

// RegisterFlags defines on fs: --config FILE, the shortcuts --listen,
// --log-level, --log-format, --admin-token and --topology (for
// rooms.default_topology), and the repeatable --set key.path=value for any
// key. A bad key or value fails fs.Parse with a message naming it.
func (l *Loader) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&fileFlag{l}, "config", "YAML configuration `file` (default: $"+EnvConfigFile+", else none)")
	shortcuts := []struct{ name, key, usage string }{
		{"listen", "listen", "HTTP listen `address` (listen)"},
		{"log-level", "log.level", "log `level`: debug, info, warn or error (log.level)"},
		{"log-format", "log.format", "log `format`: text or json (log.format)"},
		{"admin-token", "admin.token", "bearer `token` enabling the admin API (admin.token); prefer RTCIO_ADMIN_TOKEN, flags show in ps"},
		{"topology", "rooms.default_topology", "default room `topology`: mesh or sfu (rooms.default_topology)"},
	}
	for _, s := range shortcuts {
		fs.Var(&keyFlag{l: l, key: s.key, name: "--" + s.name}, s.name, s.usage)
	}
	fs.Var(&setFlag{l}, "set", "set `key.path=value` for any key (repeatable; lists are comma-separated)")
}

type fileFlag struct{ l *Loader }

func (f *fileFlag) String() string {
	if f == nil || f.l == nil {
		return ""
	}
	return f.l.file
}

func (f *fileFlag) Set(path string) error {
	if path == "" {
		return errors.New("empty file name")
	}
	f.l.file = path
	return nil
}

type keyFlag struct {
	l         *Loader
	key, name string
}

// String shows the default value in -help output; the flag package calls it
// on a zero keyFlag too, hence the nil checks.
func (f *keyFlag) String() string {
	if f == nil || f.l == nil || isSecret(f.key) {
		return ""
	}
	d := Default()
	lf, ok := lookupLeaf(configLeaves(), f.key)
	if !ok {
		return ""
	}
	return formatText(fieldByIndex(&d, lf.index))
}

func (f *keyFlag) Set(value string) error { return f.l.addOverride(f.key, value, f.name) }

type setFlag struct{ l *Loader }

func (f *setFlag) String() string { return "" }

func (f *setFlag) Set(arg string) error {
	key, value, ok := strings.Cut(arg, "=")
	if !ok {
		return fmt.Errorf("want key.path=value, got %q", arg)
	}
	return f.l.Set(strings.TrimSpace(key), value)
}

// Load builds, validates and returns the configuration. environ is the
// process environment as os.Environ returns it ("KEY=value" entries); a
// slice rather than a lookup function so that unknown RTCIO_* variables can
// be found and reported by Warnings.
//
// Environment variables with an empty value are ignored, because container
// tooling routinely passes unset variables through as empty ones; use the
// file or --set to set a key to an empty value.
//
// Every problem is reported at once: file errors (with line numbers), bad
// environment values, then, once those are fixed, every *FieldError from
// Validate with its Source filled in.
func (l *Loader) Load(environ []string) (Config, error) {
	l.warnings = nil
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	sources := map[string]string{}
	leaves := configLeaves()
	cfg := Default()

	path := l.file
	if path == "" {
		path = env[EnvConfigFile]
	}
	var errs []error
	if path != "" {
		// On a bad file, carry on from the defaults so that environment and
		// flag mistakes are reported in the same run.
		if data, err := readFile(path); err != nil {
			errs = append(errs, err)
		} else if parsed, err := parseYAML(data, cfg, path, sources); err != nil {
			errs = append(errs, err) // already names the file and line
		} else {
			cfg = parsed
		}
	}

	known := map[string]bool{EnvConfigFile: true}
	var envNames []string
	for _, lf := range leaves {
		known[lf.env] = true
		envNames = append(envNames, strings.TrimPrefix(lf.env, EnvPrefix))
		value, ok := env[lf.env]
		if !ok || value == "" {
			continue
		}
		if err := parseText(fieldByIndex(&cfg, lf.index), value); err != nil {
			if isSecret(lf.path) {
				err = errors.New("invalid value")
			}
			errs = append(errs, fmt.Errorf("environment %s (%s): %w", lf.env, lf.path, err))
			continue
		}
		sources[lf.path] = "environment " + lf.env
	}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if strings.HasPrefix(name, EnvPrefix) && !known[name] {
			hint := ""
			if s := suggest(strings.TrimPrefix(name, EnvPrefix), envNames); s != "" {
				hint = fmt.Sprintf(" (did you mean %s%s?)", EnvPrefix, s)
			}
			l.warnings = append(l.warnings, fmt.Sprintf("ignoring environment variable %s: no such key%s", name, hint))
		}
	}

	for _, o := range l.overrides {
		lf, _ := lookupLeaf(leaves, o.key) // checked by addOverride
		if err := parseText(fieldByIndex(&cfg, lf.index), o.value); err != nil {
			errs = append(errs, fmt.Errorf("flag %s: %w", o.flag, err))
			continue
		}
		sources[o.key] = "flag " + o.flag
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	if err := cfg.Validate(); err != nil {
		annotate(err, sources)
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// Warnings returns what the last Load noticed but did not fail on, such as
// RTCIO_* variables that match no key (likely typos).
func (l *Loader) Warnings() []string { return slices.Clone(l.warnings) }

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return data, nil
}

// annotate fills the Source of each FieldError in a joined error with where
// its key (or, for a list item, the enclosing list) was set.
func annotate(err error, sources map[string]string) {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return
	}
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			continue
		}
		for key := fe.Key; key != ""; key = parentKey(key) {
			if src, ok := sources[key]; ok {
				fe.Source = src
				break
			}
		}
	}
}

// parentKey strips the last segment: "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}
