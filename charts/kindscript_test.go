package charts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKindScriptChecksItsTools runs hack/kind-e2e.sh with stand-ins for docker, kind,
// kubectl and helm (this machine has no Docker engine): it must stop with a message naming
// the missing tool, and `down` must delete exactly its own cluster.
func TestKindScriptChecksItsTools(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	stub := func(name, body string) string {
		p := filepath.Join(dir, name)
		script := "#!/bin/sh\necho \"" + name + " $*\" >> " + calls + "\n" + body + "\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := stub("ok", "exit 0")
	dockerDown := stub("docker-down", "exit 1")
	kindWithCluster := stub("kind-with-cluster", `[ "$1 $2" = "get clusters" ] && echo other && echo kafkasub; exit 0`)
	missing := filepath.Join(dir, "missing")
	script, err := filepath.Abs(filepath.Join(repoRoot, "hack/kind-e2e.sh"))
	if err != nil {
		t.Fatal(err)
	}

	run := func(env map[string]string, args ...string) (string, error) {
		t.Helper()
		if err := os.Remove(calls); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "KIND_CLUSTER=kafkasub")
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"Without docker it says Docker is needed.", map[string]string{"DOCKER": missing, "KIND": ok, "KUBECTL": ok, "HELM": ok}, nil, "docker is not installed"},
		{"Without a Docker engine it says the daemon is not reachable.", map[string]string{"DOCKER": dockerDown, "KIND": ok, "KUBECTL": ok, "HELM": ok}, nil, "engine is not reachable"},
		{"Without kind it says how to install kind.", map[string]string{"DOCKER": ok, "KIND": missing, "KUBECTL": ok, "HELM": ok}, nil, "kind is not installed"},
		{"Without kubectl it says kubectl is needed.", map[string]string{"DOCKER": ok, "KIND": ok, "KUBECTL": missing, "HELM": ok}, nil, "kubectl is not installed"},
		{"Without helm it points at make helm.", map[string]string{"DOCKER": ok, "KIND": ok, "KUBECTL": ok, "HELM": missing}, nil, "make helm"},
		{"down refuses to run without Docker too.", map[string]string{"DOCKER": missing, "KIND": ok, "KUBECTL": ok}, []string{"down"}, "docker is not installed"},
		{"An unknown command prints the usage.", nil, []string{"up"}, "usage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(tt.env, tt.args...)
			if err == nil {
				t.Fatalf("the script succeeded:\n%s", out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("the output does not say %q:\n%s", tt.want, out)
			}
			if b, _ := os.ReadFile(calls); strings.Contains(string(b), "create") || strings.Contains(string(b), "build") {
				t.Errorf("it went on after the check failed: %s", b)
			}
		})
	}

	t.Run("down deletes its own cluster and nothing else.", func(t *testing.T) {
		out, err := run(map[string]string{"DOCKER": ok, "KIND": kindWithCluster, "KUBECTL": ok}, "down")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, _ := os.ReadFile(calls)
		if !strings.Contains(string(b), "kind-with-cluster delete cluster --name kafkasub\n") || strings.Contains(string(b), "other") {
			t.Errorf("calls:\n%s", b)
		}
	})
	t.Run("down without a cluster deletes nothing.", func(t *testing.T) {
		out, err := run(map[string]string{"DOCKER": ok, "KIND": ok, "KUBECTL": ok}, "down")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if b, _ := os.ReadFile(calls); strings.Contains(string(b), "delete") {
			t.Errorf("calls:\n%s", b)
		}
		if !strings.Contains(out, "no kind cluster named kafkasub") {
			t.Errorf("output:\n%s", out)
		}
	})
}

// TestKindScriptIsShellcheckClean runs shellcheck (Debian package shellcheck, which CI
// installs) on the kind script.
func TestKindScriptIsShellcheckClean(t *testing.T) {
	path, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	out, err := exec.Command(path, "--severity=style", filepath.Join(repoRoot, "hack/kind-e2e.sh")).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck hack/kind-e2e.sh: %v\n%s", err, out)
	}
}
