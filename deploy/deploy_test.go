// Package deploy_test checks the deployment files in deploy/: every YAML
// parses, the Dockerfile's build command is the one that builds the binary
// here, the shipped configurations load in that binary, the systemd unit
// passes systemd-analyze verify, and the timeouts and ports agree across
// files.
package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// buildCommand is the Dockerfile's build step, word for word.
const buildCommand = "CGO_ENABLED=0 go build -trimpath -o /out/rtcio-gateway ./cmd/rtcio-gateway"

// binary builds the gateway once per test run, with the Dockerfile's
// command (its output path moved to a temporary directory).
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "rtcio-deploy-test")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "rtcio-gateway")
	env, args, err := splitCommand(strings.Replace(buildCommand, "/out/rtcio-gateway", out, 1))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New(strings.Join(args, " ") + ": " + err.Error() + "\n" + string(b))
	}
	return out, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if path, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(path))
	}
	os.Exit(code)
}

// splitCommand splits "A=1 B=2 prog args..." into its environment and argv.
func splitCommand(line string) (env, args []string, err error) {
	for _, f := range strings.Fields(line) {
		if len(args) == 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(f) {
			env = append(env, f)
			continue
		}
		args = append(args, f)
	}
	if len(args) == 0 {
		return nil, nil, errors.New("no command in " + strconv.Quote(line))
	}
	return env, args, nil
}

func built(t *testing.T) string {
	t.Helper()
	path, err := binary()
	if err != nil {
		t.Fatalf("building with the Dockerfile's command: %v", err)
	}
	return path
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// documents decodes every YAML document of a file.
func documents(t *testing.T, name string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, name)))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, len(docs)+1, err)
		}
		if doc == nil {
			t.Fatalf("%s: document %d is empty", name, len(docs)+1)
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		t.Fatalf("%s holds no YAML document", name)
	}
	return docs
}

// path walks nested maps and lists ("spec.template.spec.containers.0.name").
func path(v any, p string) any {
	for _, k := range strings.Split(p, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestEveryYAMLParses(t *testing.T) {
	files := yamlFiles(t)
	if len(files) < 6 {
		t.Fatalf("found only %v", files)
	}
	kinds := map[string]bool{}
	for _, f := range files {
		docs := documents(t, f)
		if !strings.HasPrefix(f, "k8s/") {
			continue
		}
		for i, d := range docs {
			kind, _ := d["kind"].(string)
			api, _ := d["apiVersion"].(string)
			name, _ := path(d, "metadata.name").(string)
			if kind == "" || api == "" || (kind != "Kustomization" && name == "") {
				t.Errorf("%s document %d: kind %q apiVersion %q name %q", f, i+1, kind, api, name)
			}
			kinds[kind] = true
		}
	}
	for _, k := range []string{"StatefulSet", "Service", "ConfigMap", "Namespace", "Kustomization"} {
		if !kinds[k] {
			t.Errorf("no %s among the Kubernetes manifests", k)
		}
	}
	// Every resource the kustomization lists exists.
	for _, r := range path(documents(t, "k8s/kustomization.yaml")[0], "resources").([]any) {
		if _, err := os.Stat(filepath.Join("k8s", r.(string))); err != nil {
			t.Errorf("kustomization resource %v: %v", r, err)
		}
	}
	compose := documents(t, "compose.yaml")[0]
	for _, svc := range []string{"gateway", "coturn"} {
		if path(compose, "services."+svc) == nil {
			t.Errorf("compose.yaml has no %s service", svc)
		}
	}
	// The configuration embedded in the ConfigMap is YAML too.
	var embedded map[string]any
	if err := yaml.Unmarshal([]byte(configMapGatewayYAML(t)), &embedded); err != nil || embedded == nil {
		t.Errorf("ConfigMap gateway.yaml: %v", err)
	}
}

func configMapGatewayYAML(t *testing.T) string {
	t.Helper()
	data, _ := documents(t, "k8s/configmap.yaml")[0]["data"].(map[string]any)
	s, _ := data["gateway.yaml"].(string)
	if s == "" {
		t.Fatal("k8s/configmap.yaml has no data.gateway.yaml")
	}
	return s
}

func goVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "../go.mod"))
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	return m[1]
}

func TestDockerfileBuildsTheSameBinary(t *testing.T) {
	df := readFile(t, "Dockerfile")
	var runs []string
	sc := bufio.NewScanner(strings.NewReader(df))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			runs = append(runs, strings.TrimSpace(strings.TrimPrefix(line, "RUN ")))
		}
	}
	if len(runs) != 1 || runs[0] != buildCommand {
		t.Fatalf("Dockerfile build steps %q, want exactly %q", runs, buildCommand)
	}
	if want := "FROM golang:" + goVersion(t); !strings.Contains(df, want) {
		t.Errorf("Dockerfile does not build with %s (go.mod's version)", want)
	}
	if !regexp.MustCompile(`(?m)^USER (65532|nonroot)`).MatchString(df) || !strings.Contains(df, ":nonroot") {
		t.Error("runtime image does not run as the non-root user")
	}
	if !strings.Contains(df, "COPY --from=build /out/rtcio-gateway ") {
		t.Error("runtime image does not copy the built binary")
	}

	bin := built(t)
	// CGO_ENABLED=0 gives a static binary: no ELF interpreter, so it runs in
	// a distroless/static image without libc.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary is dynamically linked (has PT_INTERP)")
		}
	}
	out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Errorf("rtcio-gateway version: %v %q", err, out)
	}
}

// The configurations shipped here load in the binary built from this tree.
func TestShippedConfigurationsLoad(t *testing.T) {
	bin := built(t)
	cm := filepath.Join(t.TempDir(), "configmap-gateway.yaml")
	if err := os.WriteFile(cm, []byte(configMapGatewayYAML(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []string{"gateway.yaml", cm, "cluster/gateway.yaml"} {
		cmd := exec.CommandContext(t.Context(), bin, "config", "check", "--config", cfg)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no RTCIO_* from the test's environment
		if cfg == "cluster/gateway.yaml" {
			// What compose sets for each node.
			cmd.Env = append(cmd.Env, "RTCIO_CLUSTER_NODE_ID=gateway-1", "RTCIO_REDIS_PASSWORD=0123456789abcdef")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("config check %s: %v\n%s", cfg, err, out)
		}
	}
}

func TestSystemdUnitVerifies(t *testing.T) {
	unit := readFile(t, "systemd/rtcio-gateway.service")
	for _, want := range []string{
		"KillSignal=SIGTERM", "NoNewPrivileges=yes", "ProtectSystem=strict", "RestrictAddressFamilies=",
		"ReadWritePaths=/var/lib/rtcio-gateway", "User=rtcio-gateway", "CapabilityBoundingSet=\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): unit not verified")
	}
	// verify checks that ExecStart exists, so point it at the binary built
	// from this tree; everything else is the shipped unit.
	dir := t.TempDir()
	verified := filepath.Join(dir, "rtcio-gateway.service")
	text := strings.Replace(unit, "ExecStart=/usr/local/bin/rtcio-gateway ", "ExecStart="+built(t)+" ", 1)
	if err := os.WriteFile(verified, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), analyze, "verify", verified)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Unknown keys and bad values are only warnings: refuse them too.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "rtcio-gateway.service") {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
}

func parseDuration(t *testing.T, what, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return d
}

// A drain must be allowed to finish: every supervisor waits longer than the
// gateway's shutdown.timeout before killing it, and every file opens the
// same ports.
func TestTimeoutsAndPortsAgree(t *testing.T) {
	cfg := documents(t, "gateway.yaml")[0]
	drain := parseDuration(t, "gateway.yaml shutdown.timeout", path(cfg, "shutdown.timeout").(string))
	udp := path(cfg, "media.udp_port").(int)

	unit := readFile(t, "systemd/rtcio-gateway.service")
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)`).FindStringSubmatch(unit)
	if m == nil || parseDuration(t, "TimeoutStopSec", m[1]) <= drain {
		t.Errorf("systemd TimeoutStopSec %v is not above shutdown.timeout %v", m, drain)
	}

	compose := documents(t, "compose.yaml")[0]
	grace := parseDuration(t, "stop_grace_period", path(compose, "services.gateway.stop_grace_period").(string))
	if grace <= drain {
		t.Errorf("compose stop_grace_period %v is not above shutdown.timeout %v", grace, drain)
	}
	if !strings.Contains(readFile(t, "compose.yaml"), strconv.Itoa(udp)+":"+strconv.Itoa(udp)+"/udp") {
		t.Errorf("compose does not publish UDP %d", udp)
	}
	if !strings.Contains(readFile(t, "Dockerfile"), strconv.Itoa(udp)+"/udp") {
		t.Errorf("Dockerfile does not EXPOSE %d/udp", udp)
	}

	var k8sCfg map[string]any
	if err := yaml.Unmarshal([]byte(configMapGatewayYAML(t)), &k8sCfg); err != nil {
		t.Fatal(err)
	}
	k8sDrain := parseDuration(t, "ConfigMap shutdown.timeout", path(k8sCfg, "shutdown.timeout").(string))
	sts := documents(t, "k8s/statefulset.yaml")[0]
	pod := path(sts, "spec.template.spec")
	tgp := time.Duration(path(pod, "terminationGracePeriodSeconds").(int)) * time.Second
	preStop := time.Duration(path(pod, "containers.0.lifecycle.preStop.sleep.seconds").(int)) * time.Second
	if tgp <= preStop+k8sDrain {
		t.Errorf("terminationGracePeriodSeconds %v is not above preStop %v + shutdown.timeout %v", tgp, preStop, k8sDrain)
	}
	if p := path(pod, "containers.0.livenessProbe.httpGet.path"); p != "/healthz" {
		t.Errorf("liveness probe path %v", p)
	}
	if p := path(pod, "containers.0.readinessProbe.httpGet.path"); p != "/readyz" {
		t.Errorf("readiness probe path %v", p)
	}
	k8sUDP := path(k8sCfg, "media.udp_port").(int)
	foundPod, foundSvc := false, false
	for _, p := range path(pod, "containers.0.ports").([]any) {
		if path(p, "protocol") == "UDP" && path(p, "containerPort") == k8sUDP {
			foundPod = true
		}
	}
	for _, d := range documents(t, "k8s/service.yaml") {
		ports, _ := path(d, "spec.ports").([]any)
		for _, p := range ports {
			if path(p, "protocol") == "UDP" && path(p, "port") == k8sUDP {
				foundSvc = true
			}
		}
	}
	if !foundPod || !foundSvc {
		t.Errorf("UDP %d: in pod %v, in a Service %v", k8sUDP, foundPod, foundSvc)
	}
}
