package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Environment variables of the e2e test.
const (
	// envEnable forces the e2e tests on ("1": missing binaries fail the test) or off ("0").
	// Unset, they run when KUBEBUILDER_ASSETS has all four control-plane binaries and a kwok
	// binary is found, and skip otherwise.
	envEnable = "KAFKASUB_E2E"
	// envKwok is the kwok binary (default bin/kwok in the repository).
	envKwok = "KAFKASUB_E2E_KWOK"
	// envKwokStages is a directory with kwok's Stage manifests (default: kustomize/stage of
	// the kwok module whose version the binary reports, from the Go module cache).
	envKwokStages = "KAFKASUB_E2E_KWOK_STAGES"
	// envArtifacts keeps the logs of every process (control plane, operator, consumers) in
	// this directory; without it they go to a temporary directory that is kept only when a
	// test fails.
	envArtifacts = "KAFKASUB_E2E_ARTIFACTS"
	// envAssets is the envtest binary directory.
	envAssets = "KUBEBUILDER_ASSETS"
)

// Names on the fake node.
const (
	nodeName           = "kwok-node-0"
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	taintNotReady      = "node.kubernetes.io/not-ready"
)

// podCIDR is the fake node's spec.podCIDR, from which kwok gives its Pods their IPs: a
// loopback range (Linux routes all of 127.0.0.0/8 to lo), so a consumer can listen on its
// Pod's IP and the operator reach it there, as in a cluster. The second octet differs from
// run to run, so that two runs on one machine do not take each other's addresses.
var podCIDR = fmt.Sprintf("127.%d.0.0/16", 100+rand.IntN(100))

// kwokStageFiles are the kwok Stage manifests the fake node and its pods go through, as
// shipped in the kwok module under kustomize/stage.
var kwokStageFiles = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

// repoRoot is the repository's top directory; the tests run in hack/e2e.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}()

// controlPlane is the local cluster: apiserver and etcd from envtest, plus
// kube-controller-manager, kube-scheduler and kwok as subprocesses.
type controlPlane struct {
	logDir     string
	keepLogs   bool
	env        *envtest.Environment
	cfg        *rest.Config
	kubeconfig string
	scheme     *runtime.Scheme
	// client talks to the apiserver without a cache, so every read is current.
	client client.Client
	procs  []*process
}

var (
	sharedPlane     *controlPlane
	sharedPlaneErr  error
	sharedPlaneOnce sync.Once
	anyTestFailed   bool
	anyTestFailedMu sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPlane != nil {
		anyTestFailedMu.Lock()
		failed := anyTestFailed || code != 0
		anyTestFailedMu.Unlock()
		sharedPlane.stop(failed)
	}
	os.Exit(code)
}

// requireControlPlane skips the test unless the e2e tests are enabled, and otherwise
// returns the control plane shared by the package's tests, starting it on first use.
func requireControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	switch os.Getenv(envEnable) {
	case "1":
	case "0":
		t.Skipf("end-to-end test: turned off by %s=0", envEnable)
	default:
		if why := missingPrerequisites(); why != "" {
			t.Skipf("end-to-end test: %s; give %s with kube-apiserver, etcd, kube-controller-manager and kube-scheduler (hack/envtest.sh) and a kwok binary (%s, default bin/kwok: make kwok), or run make e2e",
				why, envAssets, envKwok)
		}
	}
	sharedPlaneOnce.Do(func() {
		start := time.Now()
		sharedPlane, sharedPlaneErr = startControlPlane(t.Logf)
		if sharedPlaneErr == nil {
			t.Logf("STEP control plane ready in %s (logs in %s)", time.Since(start).Round(time.Millisecond), sharedPlane.logDir)
		}
	})
	if sharedPlaneErr != nil {
		t.Fatalf("start the control plane: %v", sharedPlaneErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			anyTestFailedMu.Lock()
			anyTestFailed = true
			anyTestFailedMu.Unlock()
			sharedPlane.dumpLogs(t)
		}
	})
	return sharedPlane
}

// controlPlaneBinaries are the binaries the control plane needs from KUBEBUILDER_ASSETS.
var controlPlaneBinaries = []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"}

// kwokBinary is the kwok binary to run.
func kwokBinary() string {
	if k := os.Getenv(envKwok); k != "" {
		return k
	}
	return filepath.Join(repoRoot, "bin", "kwok")
}

// missingPrerequisites says what is missing to run the e2e tests, or "".
func missingPrerequisites() string {
	assets := os.Getenv(envAssets)
	if assets == "" {
		return envAssets + " is not set"
	}
	for _, b := range controlPlaneBinaries {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return fmt.Sprintf("%s=%s has no %s", envAssets, assets, b)
		}
	}
	if _, err := os.Stat(kwokBinary()); err != nil {
		return fmt.Sprintf("no kwok binary at %s", kwokBinary())
	}
	return ""
}

// startControlPlane starts everything and returns once a fake node is Ready and schedulable.
func startControlPlane(logf func(string, ...any)) (cp *controlPlane, err error) {
	assets := os.Getenv(envAssets)
	if assets == "" {
		return nil, fmt.Errorf("%s is not set: it must name a directory with kube-apiserver, etcd, kube-controller-manager and kube-scheduler (hack/envtest.sh prints one)", envAssets)
	}
	var missing []string
	for _, b := range controlPlaneBinaries {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s=%s lacks %s (hack/envtest.sh builds all four)", envAssets, assets, strings.Join(missing, ", "))
	}
	kwok := kwokBinary()
	if _, err := os.Stat(kwok); err != nil {
		return nil, fmt.Errorf("kwok binary %s: %w (make kwok installs it, or set %s)", kwok, err, envKwok)
	}
	stages, err := kwokStages(kwok)
	if err != nil {
		return nil, err
	}

	cp = &controlPlane{}
	if dir := os.Getenv(envArtifacts); dir != "" {
		cp.logDir, cp.keepLogs = dir, true
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	} else if cp.logDir, err = os.MkdirTemp("", "kafkasub-e2e-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cp.stop(true)
		}
	}()

	logf("STEP start kube-apiserver and etcd from %s", assets)
	cp.env = &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if cp.cfg, err = cp.env.Start(); err != nil {
		cp.env = nil
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	admin, err := cp.env.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add the admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("render the kubeconfig: %w", err)
	}
	cp.kubeconfig = filepath.Join(cp.logDir, "kubeconfig")
	if err := os.WriteFile(cp.kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	cp.scheme = runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(cp.scheme); err != nil {
		return nil, err
	}
	if cp.client, err = client.New(cp.cfg, client.Options{Scheme: cp.scheme}); err != nil {
		return nil, err
	}

	// The CRD before the controller manager: its garbage collector looks for new resource
	// types only every 30 s, and until it has seen KafkaSubscriptions, deleting one leaves
	// its children.
	logf("STEP install the CRD from config/crd/bases")
	if _, err := envtest.InstallCRDs(cp.cfg, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(repoRoot, "config", "crd", "bases")},
		ErrorIfPathMissing: true,
	}); err != nil {
		return nil, fmt.Errorf("install the CRD: %w", err)
	}

	logf("STEP start kube-controller-manager, kube-scheduler and kwok (kubeconfig %s)", cp.kubeconfig)
	if err := cp.startProc("kube-controller-manager", filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+cp.kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--controllers=deployment-controller,replicaset-controller,garbage-collector-controller,disruption-controller",
		"--concurrent-gc-syncs=5",
	); err != nil {
		return nil, err
	}
	if err := cp.startProc("kube-scheduler", filepath.Join(assets, "kube-scheduler"),
		"--kubeconfig="+cp.kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return nil, err
	}
	kwokArgs := []string{"--kubeconfig=" + cp.kubeconfig, "--manage-all-nodes", "--node-lease-duration-seconds=40"}
	for _, s := range stages {
		kwokArgs = append(kwokArgs, "--config="+s)
	}
	if err := cp.startProc("kwok", kwok, kwokArgs...); err != nil {
		return nil, err
	}

	logf("STEP create the fake node %s (pod IPs from %s) and wait until it is Ready and schedulable", nodeName, podCIDR)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cp.createNode(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

// kwokStages returns the Stage manifests for kwok: from envKwokStages, or from the kwok
// module (at the version the binary reports) in the Go module cache.
func kwokStages(kwok string) ([]string, error) {
	dir := os.Getenv(envKwokStages)
	if dir == "" {
		out, err := exec.Command(kwok, "--version").Output()
		if err != nil {
			return nil, fmt.Errorf("%s --version: %w", kwok, err)
		}
		version := regexp.MustCompile(`v\d+\.\d+\.\d+\S*`).FindString(string(out))
		if version == "" {
			return nil, fmt.Errorf("%s --version printed no version: %q", kwok, out)
		}
		dl := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/kwok@"+version)
		dl.Dir = os.TempDir() // outside the module: it must not touch go.mod
		out, err = dl.Output()
		if err != nil {
			return nil, fmt.Errorf("locate the kwok %s module for its stage manifests (or set %s): %w", version, envKwokStages, err)
		}
		var mod struct{ Dir string }
		if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
			return nil, fmt.Errorf("go mod download sigs.k8s.io/kwok@%s: no directory in %q", version, out)
		}
		dir = filepath.Join(mod.Dir, "kustomize", "stage")
	}
	var files []string
	for _, f := range kwokStageFiles {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("kwok stage manifest: %w", err)
		}
		files = append(files, p)
	}
	return files, nil
}

func (cp *controlPlane) startProc(name, bin string, args ...string) error {
	p, err := startProcess(name, cp.logDir, "", nil, bin, args...)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)
	return nil
}

// createNode registers the fake node that kwok manages (its Pods get IPs from podCIDR),
// waits for kwok to report it Ready, and removes the not-ready taint the apiserver put on
// it (the node-lifecycle controller, which would do that, is not run: it would also evict
// pods of a node it thinks is gone).
func (cp *controlPlane) createNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        nodeName,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": nodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("32"),
				corev1.ResourceMemory: resource.MustParse("256Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
		},
	}
	node.Status.Allocatable = node.Status.Capacity
	if err := cp.client.Create(ctx, node); err != nil {
		return fmt.Errorf("create node %s: %w", nodeName, err)
	}
	if err := cp.waitFor(ctx, "node "+nodeName+" Ready (set by kwok)", func(ctx context.Context) (bool, string, error) {
		var n corev1.Node
		if err := cp.client.Get(ctx, client.ObjectKey{Name: nodeName}, &n); err != nil {
			return false, "", err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, fmt.Sprintf("Ready=%s", c.Status), nil
			}
		}
		return false, "no Ready condition yet", nil
	}); err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var n corev1.Node
		if err := cp.client.Get(ctx, client.ObjectKey{Name: nodeName}, &n); err != nil {
			return err
		}
		var keep []corev1.Taint
		for _, taint := range n.Spec.Taints {
			if taint.Key != taintNotReady {
				keep = append(keep, taint)
			}
		}
		if len(keep) == len(n.Spec.Taints) {
			return nil
		}
		n.Spec.Taints = keep
		return cp.client.Update(ctx, &n)
	})
}

// checkAlive returns an error naming every control-plane process that has ended.
func (cp *controlPlane) checkAlive() error {
	var errs []error
	for _, p := range cp.procs {
		if ok, err := p.exited(); ok {
			errs = append(errs, fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.name, err, p.logPath, p.tail(20)))
		}
	}
	return errors.Join(errs...)
}

// waitFor polls cond every 250ms until it is true, ctx ends, or a control-plane process
// dies. cond returns a short description of what it saw, used in the timeout error.
func (cp *controlPlane) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, string, error)) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last string
	var lastErr error
	for {
		ok, seen, err := cond(ctx)
		if err == nil && ok {
			return nil
		}
		if seen != "" {
			last = seen
		}
		lastErr = err
		if err := cp.checkAlive(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s: last seen %q, last error %v", what, last, lastErr)
		case <-tick.C:
		}
	}
}

// dumpLogs writes the last warnings and errors of each control-plane log into the test
// log (the whole logs stay in the log directory).
func (cp *controlPlane) dumpLogs(t *testing.T) {
	for _, p := range cp.procs {
		t.Logf("last warnings and errors of %s (whole log: %s):\n%s", p.name, p.logPath, p.tailMatching(15, isWarningOrError))
	}
}

// isWarningOrError matches klog's E/W lines and slog's WARN/ERROR records.
func isWarningOrError(line string) bool {
	return strings.HasPrefix(line, "E") || strings.HasPrefix(line, "W") ||
		strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`)
}

// stop ends kwok, the scheduler, the controller manager, then the apiserver and etcd.
// Logs are kept when keep is set or an artifacts directory was given.
func (cp *controlPlane) stop(failed bool) {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		if ended, err := p.exited(); ended {
			fmt.Fprintf(os.Stderr, "e2e: %s had exited before the end (%v)\n", p.name, err)
			continue
		}
		// The scheduler exits 1 ("finished without leader elect") on SIGTERM; only an
		// early exit says something is wrong, and checkAlive reports that during the tests.
		_ = p.stop(10 * time.Second)
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stop kube-apiserver and etcd: %v\n", err)
		}
	}
	switch {
	case cp.keepLogs:
	case failed:
		fmt.Fprintf(os.Stderr, "e2e: a test failed; logs of every process are kept in %s\n", cp.logDir)
	default:
		_ = os.RemoveAll(cp.logDir)
	}
}

// ignoreNotFound is client.IgnoreNotFound for plain errors.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// sortedKeys returns a map's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
