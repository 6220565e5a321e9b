package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileBytes bounds a configuration file; anything larger is a mistake
// (a wrong path), not a configuration.
const maxFileBytes = 1 << 20

// ParseYAML applies a YAML document on top of base and returns the result.
// Keys absent from the document keep base's values; a list in the document
// replaces base's list. Unknown keys, values of the wrong type and a second
// document are errors naming the key path and line. The result is not
// validated: call Validate.
func ParseYAML(data []byte, base Config) (Config, error) {
	return parseYAML(data, base, "", nil)
}

// parseYAML does ParseYAML; name prefixes error lines (a file name or ""),
// and sources, when not nil, receives "name:line" for every key set.
func parseYAML(data []byte, base Config, name string, sources map[string]string) (cfg Config, err error) {
	if len(data) > maxFileBytes {
		return Config{}, fmt.Errorf("%s: larger than %d bytes", orInput(name), maxFileBytes)
	}
	// yaml.v3 only recovers its own panics; a parser bug must still not take
	// the process down on a bad file.
	defer func() {
		if p := recover(); p != nil {
			cfg, err = Config{}, fmt.Errorf("%s: cannot parse YAML: %v", orInput(name), p)
		}
	}()

	w := &yamlWalker{name: name, sources: sources, walked: map[walkedKey]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) { // empty document: nothing overridden
			return base, nil
		}
		return Config{}, fmt.Errorf("%s: %w", orInput(name), err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		w.errorf(&extra, "only one YAML document is allowed, found another")
	case !errors.Is(err, io.EOF):
		return Config{}, fmt.Errorf("%s: %w", orInput(name), err)
	}
	if len(root.Content) == 1 {
		w.value(root.Content[0], reflect.TypeFor[Config](), "")
	}
	if err := w.err(); err != nil {
		return Config{}, err
	}

	// The walk above explains problems by key path; this strict decode is
	// what actually sets the values, and its KnownFields check is a second
	// guard should the walk ever disagree with yaml.v3 about a key.
	cfg = base
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", orInput(name), err)
	}
	return cfg, nil
}

func orInput(name string) string {
	if name == "" {
		return "YAML"
	}
	return name
}

// yamlWalker checks a document against Config's type before decoding, so
// each problem is reported with its full key path and line, all at once.
type yamlWalker struct {
	name    string
	sources map[string]string
	errs    []error
	dropped int // errors beyond maxYAMLErrors
	// walked holds the mappings already checked against a type. Aliases and
	// merges share nodes, and without this a document of nested merges
	// ("billion laughs") would take exponential time.
	walked map[walkedKey]bool
}

type walkedKey struct {
	node *yaml.Node
	typ  reflect.Type
}

// maxYAMLErrors caps the report: past a screenful, more lines do not help.
const maxYAMLErrors = 20

func (w *yamlWalker) where(n *yaml.Node) string {
	if w.name == "" {
		return fmt.Sprintf("line %d", n.Line)
	}
	return fmt.Sprintf("%s:%d", w.name, n.Line)
}

func (w *yamlWalker) errorf(n *yaml.Node, format string, args ...any) {
	if len(w.errs) >= maxYAMLErrors {
		w.dropped++
		return
	}
	w.errs = append(w.errs, fmt.Errorf("%s: %s", w.where(n), fmt.Sprintf(format, args...)))
}

func (w *yamlWalker) err() error {
	if w.dropped > 0 {
		return errors.Join(append(w.errs, fmt.Errorf("%s: and %d more problems", orInput(w.name), w.dropped))...)
	}
	return errors.Join(w.errs...)
}

// resolve follows aliases. yaml.v3 never builds alias chains, but the bound
// keeps a malformed tree from looping.
func resolve(n *yaml.Node) *yaml.Node {
	for range 8 {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func describe(path string) string {
	if path == "" {
		return "the top level"
	}
	return fmt.Sprintf("%q", path)
}

// value checks node n against the Go type t of key path.
func (w *yamlWalker) value(n *yaml.Node, t reflect.Type, path string) {
	n = resolve(n)
	if n == nil || isNull(n) {
		// yaml.v3 leaves scalars and sections unchanged on null and empties
		// lists, which is what an empty key should mean.
		return
	}
	switch {
	case isSection(t):
		if n.Kind != yaml.MappingNode {
			w.errorf(n, "%s must be a mapping of keys, got %s", describe(path), kindName(n))
			return
		}
		w.mapping(n, t, path, map[string]int{})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n, "%s: want a list (e.g. [a, b]), got %s", path, kindName(n))
			return
		}
		for i, item := range n.Content {
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			w.record(itemPath, item)
			w.listItem(resolve(item), t.Elem(), itemPath)
		}
	default:
		w.scalar(n, t, path)
	}
}

// listItem accepts a mapping for struct items (and a scalar when the struct
// also has a text form, like TopologyRule's "pattern=topology").
func (w *yamlWalker) listItem(n *yaml.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	if t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode {
		w.mapping(n, t, path, map[string]int{})
		return
	}
	w.scalar(n, t, path)
}

// mapping checks the keys of a struct-typed mapping. seen holds keys already
// set in this mapping, across "<<" merges, for the duplicate check.
func (w *yamlWalker) mapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	if w.walked[walkedKey{n, t}] {
		return
	}
	w.walked[walkedKey{n, t}] = true
	fields := map[string]reflect.StructField{}
	var names []string
	for _, f := range reflect.VisibleFields(t) {
		if name, _, ok := yamlName(f); ok && len(f.Index) == 1 {
			fields[name] = f
			names = append(names, name)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
			w.merge(resolve(v), t, path)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.errorf(k, "keys of %s must be plain names, got %s", describe(path), kindName(k))
			continue
		}
		key := joinPath(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			hint := ""
			if s := suggest(k.Value, names); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", joinPath(path, s))
			}
			w.errorf(k, "unknown key %q%s", key, hint)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.errorf(k, "key %q is set twice (first at line %d)", key, first)
			continue
		}
		seen[k.Value] = k.Line
		w.record(key, k)
		w.value(v, f.Type, key)
	}
}

// merge checks the value of a "<<" key: a mapping, or a list of mappings.
func (w *yamlWalker) merge(n *yaml.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		w.mapping(n, t, path, map[string]int{})
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item = resolve(item); item != nil && item.Kind == yaml.MappingNode {
				w.mapping(item, t, path, map[string]int{})
			} else if item != nil {
				w.errorf(item, "a merge (<<) in %s takes mappings, got %s", describe(path), kindName(item))
			}
		}
	default:
		w.errorf(n, "a merge (<<) in %s takes a mapping, got %s", describe(path), kindName(n))
	}
}

// scalar checks that n decodes into t by decoding it into a scratch value,
// which yields yaml.v3's exact verdict with our key path attached.
func (w *yamlWalker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.errorf(n, "%s: want %s, got %s", path, syntaxOf(t), kindName(n))
		return
	}
	scratch := reflect.New(t)
	if err := n.Decode(scratch.Interface()); err != nil {
		got := fmt.Sprintf("%q", n.Value)
		if isSecret(path) {
			got = "a value that does not fit"
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			w.errorf(n, "%s: want %s, got %s", path, syntaxOf(t), got)
			return
		}
		// An error from UnmarshalText says more than yaml.v3 would.
		w.errorf(n, "%s: want %s: %s", path, syntaxOf(t), strings.TrimPrefix(err.Error(), "yaml: "))
	}
}

func (w *yamlWalker) record(path string, n *yaml.Node) {
	if w.sources != nil {
		w.sources[path] = w.where(n)
	}
}

// marshalYAML writes c as YAML (secrets included: callers redact first).
func marshalYAML(c Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode configuration as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode configuration as YAML: %w", err)
	}
	return slices.Clip(buf.Bytes()), nil
}
