package config

import (
	"fmt"
	"log/slog"
	"reflect"
)

// RedactedValue replaces a secret that is set, so a log still shows whether
// it is set without showing it.
const RedactedValue = "REDACTED"

// Redacted returns a deep copy of c with every secret (auth.jwt_secret,
// admin.token, and any future key named like a secret, token, password or
// key) replaced by RedactedValue when set. Empty secrets stay empty.
func (c Config) Redacted() Config {
	out := reflect.New(reflect.TypeFor[Config]()).Elem()
	copyRedacted(out, reflect.ValueOf(c), "")
	return out.Interface().(Config)
}

// copyRedacted deep-copies src into the settable dst, so the copy shares no
// list with the original, and blanks secret strings on the way.
func copyRedacted(dst, src reflect.Value, path string) {
	switch src.Kind() {
	case reflect.Struct:
		t := src.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, ok := yamlName(f)
			if !ok {
				name = f.Name
			}
			copyRedacted(dst.Field(i), src.Field(i), joinPath(path, name))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		list := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyRedacted(list.Index(i), src.Index(i), path)
		}
		dst.Set(list)
	case reflect.String:
		if src.Len() > 0 && isSecret(path) {
			dst.SetString(RedactedValue)
			return
		}
		dst.Set(src)
	default:
		dst.Set(src)
	}
}

// String returns the configuration as YAML with secrets redacted: safe to
// log, and readable back as a configuration file (minus the secrets).
func (c Config) String() string {
	data, err := marshalYAML(c.Redacted())
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(data)
}

// LogValue makes slog print the redacted configuration as one attribute per
// key path, e.g. config.signaling.max_payload_bytes=65536.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	leaves := configLeaves()
	attrs := make([]slog.Attr, 0, len(leaves))
	for _, lf := range leaves {
		v := fieldByIndex(&r, lf.index)
		if v.Kind() == reflect.Slice {
			attrs = append(attrs, slog.String(lf.path, formatText(v)))
			continue
		}
		attrs = append(attrs, slog.Any(lf.path, v.Interface()))
	}
	return slog.GroupValue(attrs...)
}
