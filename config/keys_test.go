package config

import (
	"reflect"
	"strings"
	"testing"
)

// equalConfigs compares configurations treating an empty list like no list,
// since YAML cannot tell them apart.
func equalConfigs(a, b Config) bool {
	for _, c := range []*Config{&a, &b} {
		for _, lf := range configLeaves() {
			if v := fieldByIndex(c, lf.index); v.Kind() == reflect.Slice && v.Len() == 0 {
				v.SetZero()
			}
		}
	}
	return reflect.DeepEqual(a, b)
}

func TestKeysEnvNames(t *testing.T) {
	keys := Keys()
	byPath := map[string]Key{}
	envs := map[string]string{}
	for _, k := range keys {
		if other, dup := envs[k.Env]; dup {
			t.Errorf("%s and %s share the variable %s", other, k.Path, k.Env)
		}
		envs[k.Env] = k.Path
		if k.Env == EnvConfigFile {
			t.Errorf("%s takes %s, which names the config file", k.Path, EnvConfigFile)
		}
		byPath[k.Path] = k
		if want := "RTCIO_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k.Path)); k.Env != want {
			t.Errorf("%s: env %s, want %s", k.Path, k.Env, want)
		}
	}
	for path, env := range map[string]string{
		"listen":                      "RTCIO_LISTEN",
		"signaling.max_payload_bytes": "RTCIO_SIGNALING_MAX_PAYLOAD_BYTES",
		"rooms.default_topology":      "RTCIO_ROOMS_DEFAULT_TOPOLOGY",
		"rooms.topologies":            "RTCIO_ROOMS_TOPOLOGIES",
		"cors.allowed_origins":        "RTCIO_CORS_ALLOWED_ORIGINS",
		"shutdown.timeout":            "RTCIO_SHUTDOWN_TIMEOUT",
	} {
		if byPath[path].Env != env {
			t.Errorf("%s: env %q, want %q", path, byPath[path].Env, env)
		}
	}
	for path, secret := range map[string]bool{"auth.jwt_secret": true, "admin.token": true, "listen": false, "signaling.max_payload_bytes": false} {
		if byPath[path].Secret != secret {
			t.Errorf("%s: Secret = %v, want %v", path, byPath[path].Secret, secret)
		}
	}
	if got := byPath["rooms.topologies"].Syntax; got != "comma-separated list of pattern=topology" {
		t.Errorf("rooms.topologies syntax %q", got)
	}
}

// Every key's type must be settable from text: format the full example
// configuration key by key, parse it back onto the defaults, and get the same
// configuration. A field of an unsupported type added to Config fails here.
func TestKeysTextRoundTrip(t *testing.T) {
	want := loadTestdata(t)
	got := Default()
	l := NewLoader()
	for _, lf := range configLeaves() {
		text := formatText(fieldByIndex(&want, lf.index))
		if err := l.Set(lf.path, text); err != nil {
			t.Fatalf("Set(%s, %q): %v", lf.path, text, err)
		}
	}
	got, err := l.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalConfigs(got, want) {
		t.Errorf("round trip through --set:\ngot  %#v\nwant %#v", got, want)
	}
}

func TestTopologyRuleText(t *testing.T) {
	var r TopologyRule
	if err := r.UnmarshalText([]byte(" a=b=sfu ")); err != nil || r != (TopologyRule{"a=b", "sfu"}) {
		t.Errorf("got %+v, %v", r, err)
	}
	if err := r.UnmarshalText([]byte("lobby")); err == nil {
		t.Error("no error without =")
	}
	if s := (TopologyRule{"x*", "mesh"}).String(); s != "x*=mesh" {
		t.Errorf("String = %q", s)
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"listen", "log.level", "signaling.path"}
	if got := suggest("lsten", cands); got != "listen" {
		t.Errorf("suggest(lsten) = %q", got)
	}
	if got := suggest("zzzzzz", cands); got != "" {
		t.Errorf("suggest(zzzzzz) = %q, want none", got)
	}
}
