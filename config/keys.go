package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment variable the loader reads.
const EnvPrefix = "RTCIO_"

// EnvConfigFile names the environment variable that selects the YAML file
// when --config is not given. It is not a key of Config, so it is not in Keys.
const EnvConfigFile = EnvPrefix + "CONFIG"

// Key describes one leaf of Config: a value that can be set from the file,
// the environment or --set. Keys lists them all.
type Key struct {
	// Path is the yaml key path, e.g. "signaling.max_payload_bytes".
	Path string
	// Env is the environment variable, e.g. "RTCIO_SIGNALING_MAX_PAYLOAD_BYTES".
	Env string
	// Syntax says how to write the value in the environment or --set,
	// e.g. "integer" or "duration (e.g. 10s)".
	Syntax string
	// Secret keys are redacted by String, Redacted and LogValue, and their
	// values never appear in errors.
	Secret bool
}

// Keys lists every key of Config in declaration order. It is derived from the
// struct's yaml tags, so a field added to Config is settable everywhere
// without further code.
func Keys() []Key {
	leaves := configLeaves()
	keys := make([]Key, len(leaves))
	for i, lf := range leaves {
		keys[i] = Key{Path: lf.path, Env: lf.env, Syntax: syntaxOf(lf.typ), Secret: isSecret(lf.path)}
	}
	return keys
}

// leaf is a settable field of Config, located by its reflect index path.
type leaf struct {
	path  string
	env   string
	index []int
	typ   reflect.Type
}

// configLeaves walks Config's type. It is cheap (a few dozen fields), so it
// is recomputed on demand rather than cached in package state.
func configLeaves() []leaf {
	var out []leaf
	collectLeaves(reflect.TypeFor[Config](), "", nil, &out)
	return out
}

func collectLeaves(t reflect.Type, prefix string, index []int, out *[]leaf) {
	for _, f := range reflect.VisibleFields(t) {
		if len(f.Index) != 1 { // promoted through an embedded struct: visited via that struct
			continue
		}
		name, inline, ok := yamlName(f)
		if !ok {
			continue
		}
		idx := append(slices.Clone(index), f.Index[0])
		path := joinPath(prefix, name)
		if inline {
			path = prefix
		}
		if isSection(f.Type) {
			collectLeaves(f.Type, path, idx, out)
			continue
		}
		*out = append(*out, leaf{path: path, env: envName(path), index: idx, typ: f.Type})
	}
}

// yamlName returns the key of a struct field the way yaml.v3 derives it.
func yamlName(f reflect.StructField) (name string, inline, ok bool) {
	if !f.IsExported() {
		return "", false, false
	}
	tag := f.Tag.Get("yaml")
	if tag == "-" {
		return "", false, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	inline = slices.Contains(strings.Split(opts, ","), "inline")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, inline, true
}

// isSection reports whether a field is a nested group of keys rather than a
// value. Structs that parse themselves from text (TopologyRule) are values.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !isTextUnmarshaler(t)
}

func isTextUnmarshaler(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// envName maps a key path to its environment variable.
func envName(path string) string {
	return EnvPrefix + strings.Map(func(r rune) rune {
		switch r {
		case '.', '-':
			return '_'
		}
		return r
	}, strings.ToUpper(path))
}

// isSecret decides by name, so a future "redis.password" or "turn.secret" is
// redacted without anyone remembering to list it.
func isSecret(path string) bool {
	last := path[strings.LastIndexByte(path, '.')+1:]
	for _, word := range strings.Split(last, "_") {
		switch word {
		case "secret", "token", "password", "passwd", "key", "credential", "credentials":
			return true
		}
	}
	return false
}

// fieldByIndex returns the addressable field of *c at a leaf's index.
func fieldByIndex(c *Config, index []int) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(index)
}

// lookupLeaf finds the leaf with the given path.
func lookupLeaf(leaves []leaf, path string) (leaf, bool) {
	for _, lf := range leaves {
		if lf.path == path {
			return lf, true
		}
	}
	return leaf{}, false
}

func isDuration(t reflect.Type) bool { return t == reflect.TypeFor[time.Duration]() }

// syntaxer lets a value type describe its text form for Keys and errors.
type syntaxer interface{ syntax() string }

func syntaxOf(t reflect.Type) string {
	if s, ok := reflect.New(t).Interface().(syntaxer); ok {
		return s.syntax()
	}
	switch {
	case isDuration(t):
		return "duration (e.g. 10s)"
	case t.Kind() == reflect.Slice:
		return "comma-separated list of " + syntaxOf(t.Elem())
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}

// parseText sets the addressable v from its text form, as written in an
// environment variable or --set. Lists are comma-separated; blanks around
// items are trimmed and empty items dropped, so "a, b," is [a b].
func parseText(v reflect.Value, text string) error {
	if v.Kind() == reflect.Slice {
		var items []string
		for item := range strings.SplitSeq(text, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		list := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			if err := parseText(list.Index(i), item); err != nil {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
		}
		v.Set(list)
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(text)); err != nil {
			return fmt.Errorf("want %s: %w", syntaxOf(v.Type()), err)
		}
		return nil
	}
	want := func() error { return fmt.Errorf("want %s, got %q", syntaxOf(v.Type()), text) }
	trimmed := strings.TrimSpace(text)
	if isDuration(v.Type()) {
		d, err := time.ParseDuration(trimmed)
		if err != nil {
			return want()
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(trimmed)
		if err != nil {
			return want()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(trimmed, 10, v.Type().Bits())
		if err != nil {
			return want()
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(trimmed, 10, v.Type().Bits())
		if err != nil {
			return want()
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(trimmed, v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return want()
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("values of type %s cannot be set from text", v.Type())
	}
	return nil
}

// formatText is the inverse of parseText, used for logging and flag defaults.
func formatText(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		items := make([]string, v.Len())
		for i := range items {
			items[i] = formatText(v.Index(i))
		}
		return strings.Join(items, ",")
	}
	if isDuration(v.Type()) {
		return time.Duration(v.Int()).String()
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	}
	return fmt.Sprint(v.Interface())
}

// UnmarshalText reads the "pattern=topology" form used in the environment
// and --set, e.g. RTCIO_ROOMS_TOPOLOGIES="lobby-*=sfu,standup=mesh". The
// last "=" splits, since topologies never contain one.
func (r *TopologyRule) UnmarshalText(text []byte) error {
	s := string(text)
	i := strings.LastIndexByte(s, '=')
	if i < 0 {
		return fmt.Errorf("missing \"=\" in %q", s)
	}
	r.Pattern = strings.TrimSpace(s[:i])
	r.Topology = strings.TrimSpace(s[i+1:])
	return nil
}

// String returns the "pattern=topology" form that UnmarshalText reads.
func (r TopologyRule) String() string { return r.Pattern + "=" + r.Topology }

func (*TopologyRule) syntax() string { return "pattern=topology" }

// suggest returns the candidate closest to name when it is plausibly a typo.
func suggest(name string, candidates []string) string {
	best, bestDist := "", max(1, len(name)/4)+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// didYouMean formats a suggestion suffix for an error, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
