package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// These check the pure parts of the test kubelet; they need no server and always run.

func TestRewritePath(t *testing.T) {
	mounts := []string{"/etc/kafkasub/config", "/etc/kafkasub", "/tmp"} // longest first
	dir := "/work/pod"
	cases := []struct {
		name, arg, want string
		rewritten       bool
	}{
		{"A file under a mount moves under the pod's directory.", "/etc/kafkasub/config/config.yaml", "/work/pod/etc/kafkasub/config/config.yaml", true},
		{"The mount path itself moves.", "/tmp", "/work/pod/tmp", true},
		{"A --flag=path argument keeps its flag.", "--config=/etc/kafkasub/config/config.yaml", "--config=/work/pod/etc/kafkasub/config/config.yaml", true},
		{"A path that only shares a prefix with a mount stays.", "/etc/kafkasubx/file", "/etc/kafkasubx/file", false},
		{"A relative path stays.", "etc/kafkasub/config", "etc/kafkasub/config", false},
		{"A word that is no path stays.", "consumer", "consumer", false},
		{"A path outside every mount stays.", "/var/run/x", "/var/run/x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := rewritePath(c.arg, mounts, dir)
			if got != c.want || ok != c.rewritten {
				t.Errorf("rewritePath(%q) = %q, %v; want %q, %v", c.arg, got, ok, c.want, c.rewritten)
			}
		})
	}
}

func TestPodAddr(t *testing.T) {
	cases := []struct{ name, ip, addr, want string }{
		{"A port on every address moves to the Pod's IP.", "127.77.0.5", ":8081", "127.77.0.5:8081"},
		{"A named host gives way to the Pod's IP; the port stays.", "127.77.0.5", "0.0.0.0:8080", "127.77.0.5:8080"},
		{"An IPv6 Pod IP is bracketed.", "fd00::5", ":8081", "[fd00::5]:8081"},
		{"A Pod without an IP is an error.", "", ":8081", ""},
		{"An address without a port is an error.", "127.77.0.5", "8081", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := podAddr(c.ip, c.addr)
			if got != c.want || (err != nil) != (c.want == "") {
				t.Errorf("podAddr(%q, %q) = %q, %v; want %q", c.ip, c.addr, got, err, c.want)
			}
		})
	}
}

func TestExpandVars(t *testing.T) {
	env := map[string]string{"A": "1", "B_C": "two"}
	cases := []struct{ name, in, want string }{
		{"A known reference is replaced.", "$(A)", "1"},
		{"Several references in one value are replaced.", "x-$(A)-$(B_C)", "x-1-two"},
		{"An unknown reference stays as written.", "$(NOPE)", "$(NOPE)"},
		{"A shell-style reference is not a Kubernetes one.", "$A ${A}", "$A ${A}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := expandVars(c.in, env); got != c.want {
				t.Errorf("expandVars(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestWriteItems(t *testing.T) {
	data := map[string][]byte{"config.yaml": []byte("a: 1\n"), "other": []byte("x")}

	t.Run("Without items every key becomes a file.", func(t *testing.T) {
		dir := t.TempDir()
		if err := writeItems(dir, data, nil, nil); err != nil {
			t.Fatal(err)
		}
		for key, want := range data {
			got, err := os.ReadFile(filepath.Join(dir, key))
			if err != nil || string(got) != string(want) {
				t.Errorf("%s: %q, %v; want %q", key, got, err, want)
			}
		}
	})
	t.Run("Items select keys and name their paths.", func(t *testing.T) {
		dir := t.TempDir()
		items := []corev1.KeyToPath{{Key: "config.yaml", Path: "sub/c.yaml"}}
		if err := writeItems(dir, data, items, ptr.To[int32](0o444)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "sub", "c.yaml")); err != nil || string(got) != "a: 1\n" {
			t.Errorf("sub/c.yaml: %q, %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "other")); !os.IsNotExist(err) {
			t.Errorf("a key that no item names was written (stat: %v)", err)
		}
	})
	t.Run("An item naming a missing key is an error naming it.", func(t *testing.T) {
		err := writeItems(t.TempDir(), data, []corev1.KeyToPath{{Key: "nope", Path: "n"}}, nil)
		if err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("got %v, want an error naming \"nope\"", err)
		}
	})
}

func TestContainerStatusAfterAnExit(t *testing.T) {
	exited := &process{done: make(chan struct{})}
	close(exited.done)
	running := &process{done: make(chan struct{})}
	last := &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "HandlerNotRegistered: handler \"x\" is not registered"}
	c := corev1.Container{Name: "consumer", Image: "kafkasub:dev"}
	pod := &corev1.Pod{}
	pod.Name, pod.Namespace, pod.UID = "p", "ns", "uid"
	cases := []struct {
		name     string
		pp       podProcess
		want     string
		lastHeld bool
	}{
		{"The first exit shows the container terminated with its message.",
			podProcess{pod: pod, proc: exited, last: last, backOff: time.Second}, "terminated Error exit code 1", false},
		{"A later exit shows it waiting in CrashLoopBackOff with the exit as its last state.",
			podProcess{pod: pod, proc: exited, last: last, restarts: 2, backOff: 4 * time.Second}, "waiting CrashLoopBackOff", true},
		{"A restarted container runs, not ready, with the exit as its last state.",
			podProcess{pod: pod, proc: running, last: last, restarts: 2}, "running", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := tc.pp.containerStatus(c)
			if got := describeContainerStatus(cs); !strings.HasPrefix(got, tc.want) || cs.Ready || cs.RestartCount != tc.pp.restarts {
				t.Errorf("got %s", got)
			}
			if held := cs.LastTerminationState.Terminated == last; held != tc.lastHeld {
				t.Errorf("last state holds the exit: %t, want %t", held, tc.lastHeld)
			}
			if cs.State.Terminated != nil && cs.State.Terminated.Message != last.Message {
				t.Errorf("terminated message %q", cs.State.Terminated.Message)
			}
		})
	}
}
