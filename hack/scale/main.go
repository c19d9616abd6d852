// Command scale measures how the operator copes with many subscriptions: it starts the
// envtest kube-apiserver and etcd (and kube-controller-manager, so Deployments get a
// status and ReplicaSets and Pods as in a cluster), runs `kafkasub manager` built from a
// checkout with its default flags, creates N KafkaSubscriptions (the sample, each with its
// DSN Secret) in 10 namespaces, and reports:
//
//   - seconds from the first create until every subscription has status.observedGeneration
//     equal to its generation and its Deployment exists;
//   - the manager's write requests (create, update, patch, delete, from the apiserver's
//     audit log, by its user) until then, and in all until it has written nothing for 10 s
//     (Deployment status from kube-controller-manager goes on triggering reconciles), per
//     subscription;
//   - the manager's resident memory, peak (VmHWM) and at the end.
//
// With -idle it then plays the kubelet: it binds every consumer pod to a node that does not
// exist, serves a consumer.Status of an idle consumer (joined, database up, a constant lag)
// at the pod's health port on a loopback address of its own (127.88.x.y), and reports the
// pod Running and Ready with that IP. Once every subscription shows the reports and the
// manager has been quiet for a poll round, it counts over the window the manager's writes
// by resource, the status fields that changed, and the /status requests the pods answered.
// With -jitter every answer consumes messages and moves the lag by what RoundLag rounds away;
// -jitter-max moves it further, a control that must show writes.
//
// Usage, from the repository root, with the envtest binaries of hack/envtest.sh:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run ./hack/scale -n 1000
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run ./hack/scale -n 1000 -repo /tmp/before   # another checkout
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run ./hack/scale -n 100 -idle 2m             # status writes at steady state
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run ./hack/scale -n 100 -idle 2m -lag 10000 -jitter
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go run ./hack/scale -n 20 -idle 1m -jitter-max 50   # a control: lag moves, status writes
//
// The service range is widened to a /16 so that an operator that gives every metrics
// Service a cluster IP can be measured too (envtest's /24 runs out at about 250).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kafkasub/kafkasub/controllers"
)

const managerUser = "kafkasub-manager"

var ksubGVK = schema.GroupVersionKind{Group: "kafkasub.io", Version: "v1alpha1", Kind: "KafkaSubscription"}

func main() {
	n := flag.Int("n", 1000, "subscriptions to create")
	namespaces := flag.Int("namespaces", 10, "namespaces to spread them over")
	repo := flag.String("repo", ".", "checkout whose `kafkasub manager` (and CRD and sample) to measure")
	kcm := flag.Bool("kcm", true, "run kube-controller-manager (deployment and replicaset controllers)")
	settle := flag.Duration("quiet", 10*time.Second, "after convergence, count writes until the manager wrote nothing for this long")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	managerArgs := flag.String("manager-args", "", "extra flags for `kafkasub manager`, space-separated")
	managerEnv := flag.String("manager-env", "", "extra environment of `kafkasub manager` (NAME=value), space-separated")
	replicas := flag.Int("replicas", 1, "consumer pods per subscription")
	var idle idleOptions
	flag.DurationVar(&idle.window, "idle", 0, "after convergence, run the consumer pods with a fake status endpoint and count the manager's writes for this long (0: not)")
	flag.DurationVar(&idle.pollInterval, "status-poll-interval", controllers.DefaultStatusPollInterval, "with -idle: the manager's --status-poll-interval")
	flag.IntVar(&idle.shape.partitions, "partitions", 3, "with -idle: partitions per subscription, spread over its pods")
	flag.Int64Var(&idle.shape.lag, "lag", 0, "with -idle: the lag each partition reports")
	jitter := flag.Bool("jitter", false, "with -idle: every answer consumes messages and moves each partition's lag up by as much as RoundLag rounds away (needs -lag 100 or more, e.g. 10000)")
	flag.Int64Var(&idle.shape.jitter, "jitter-max", 0, "with -idle: every answer consumes messages and moves each partition's lag up by at most this; above what RoundLag rounds away it is a control that must show writes")
	flag.Parse()
	if *jitter && idle.shape.jitter == 0 {
		if idle.shape.jitter = maxJitter(idle.shape.lag, idle.shape.partitions); idle.shape.jitter == 0 {
			fmt.Fprintf(os.Stderr, "scale: -jitter: RoundLag keeps a lag of %d exact, nothing can move; give -lag 10000\n", idle.shape.lag)
			os.Exit(2)
		}
	}
	if err := run(*n, *namespaces, *replicas, *repo, *kcm, *settle, *timeout, strings.Fields(*managerArgs), strings.Fields(*managerEnv), idle); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// idleOptions are the flags of the idle measurement.
type idleOptions struct {
	window       time.Duration
	pollInterval time.Duration
	shape        consumerShape
}

func run(n, namespaces, replicas int, repo string, kcm bool, settle, timeout time.Duration, managerArgs, managerEnv []string, idle idleOptions) error {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return fmt.Errorf("set KUBEBUILDER_ASSETS=$(hack/envtest.sh)")
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kafkasub-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	bin := filepath.Join(work, "kafkasub")
	start := time.Now()
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build %s: %w", repo, err)
	}
	log("built %s in %s", repo, time.Since(start).Round(time.Second))

	policy := filepath.Join(work, "audit-policy.yaml")
	auditLog := filepath.Join(work, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{filepath.Join(repo, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	api := env.ControlPlane.GetAPIServer().Configure()
	api.Set("service-cluster-ip-range", "10.0.0.0/16")
	api.Set("audit-policy-file", policy)
	api.Set("audit-log-path", auditLog)
	api.Set("audit-log-mode", "batch")
	api.Set("audit-log-batch-max-wait", "1s")
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	defer func() { _ = env.Stop() }()
	admin, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	kubeconfig := func(name string) (string, error) {
		u, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
		if err != nil {
			return "", err
		}
		kc, err := u.KubeConfig()
		if err != nil {
			return "", err
		}
		p := filepath.Join(work, "kubeconfig-"+name)
		return p, os.WriteFile(p, kc, 0o600)
	}

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	startProc := func(name, path string, env []string, args ...string) (*exec.Cmd, error) {
		f, err := os.Create(filepath.Join(work, name+".log"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(path, args...)
		cmd.Stdout, cmd.Stderr, cmd.Env = f, f, env
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		return cmd, nil
	}
	if kcm {
		kc, err := kubeconfig("kcm")
		if err != nil {
			return err
		}
		if _, err := startProc("kube-controller-manager", filepath.Join(assets, "kube-controller-manager"), os.Environ(),
			"--kubeconfig="+kc, "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
			"--controllers=deployment-controller,replicaset-controller"); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout+idle.window)
	defer cancel()
	sample, err := readSample(filepath.Join(repo, "config", "samples"), replicas)
	if err != nil {
		return err
	}
	secret, err := readSecret(filepath.Join(repo, "config", "samples"))
	if err != nil {
		return err
	}
	for i := 0; i < namespaces; i++ {
		ns := fmt.Sprintf("scale-%d", i)
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		s := secret.DeepCopy()
		s.SetNamespace(ns)
		if err := admin.Create(ctx, s); err != nil {
			return err
		}
	}

	kc, err := kubeconfig(managerUser)
	if err != nil {
		return err
	}
	args := append([]string{"manager", "--kubeconfig=" + kc, "--leader-elect=false", "--metrics-bind-address=0",
		"--health-probe-bind-address=0", "--consumer-image=kafkasub:scale"}, managerArgs...)
	if idle.window > 0 {
		args = append(args, "--"+controllers.FlagStatusPollInterval+"="+idle.pollInterval.String())
	}
	mgr, err := startProc("manager", bin, append(os.Environ(), managerEnv...), args...)
	if err != nil {
		return err
	}
	var peakSeen atomic.Int64
	go func() {
		for ctx.Err() == nil {
			if rss, _ := memory(mgr.Process.Pid); rss > peakSeen.Load() {
				peakSeen.Store(rss)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second) // caches synced, so the creates are what it reacts to
	writesBefore, _, err := countWrites(auditLog)
	if err != nil {
		return err
	}

	log("creating %d KafkaSubscriptions in %d namespaces", n, namespaces)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			k := sample.DeepCopy()
			k.SetName(fmt.Sprintf("sub-%04d", i))
			k.SetNamespace(fmt.Sprintf("scale-%d", i%namespaces))
			if err := admin.Create(ctx, k); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fmt.Errorf("create: %w", err)
	}
	created := time.Since(t0)
	log("created in %s", created.Round(time.Millisecond))

	var converged time.Duration
	for {
		done, err := convergedCount(ctx, admin)
		if err != nil {
			return err
		}
		if done == n {
			converged = time.Since(t0)
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("only %d of %d converged after %s", done, n, time.Since(t0).Round(time.Second))
		}
		log("%6.1fs  %d of %d converged", time.Since(t0).Seconds(), done, n)
		time.Sleep(time.Second)
	}
	log("all %d converged %.1fs after the first create", n, converged.Seconds())
	time.Sleep(2 * time.Second) // the audit batch
	atConvergence, _, err := countWrites(auditLog)
	if err != nil {
		return err
	}
	// Deployment status from kube-controller-manager keeps triggering reconciles for a
	// while: count until the manager has been quiet for the settle period.
	settled, last := atConvergence, time.Now()
	for time.Since(last) < settle && ctx.Err() == nil {
		time.Sleep(time.Second)
		now, _, err := countWrites(auditLog)
		if err != nil {
			return err
		}
		if now != settled {
			settled, last = now, time.Now()
		}
	}
	quiet := last.Sub(t0) - 2*time.Second // the audit batch delay
	_, byKind, err := countWrites(auditLog)
	if err != nil {
		return err
	}
	rss, hwm := memory(mgr.Process.Pid)
	anon, file := rssParts(mgr.Process.Pid)
	if p := peakSeen.Load(); p > hwm {
		hwm = p
	}

	fmt.Printf("\nrepo              %s\n", repo)
	fmt.Printf("subscriptions     %d in %d namespaces (kube-controller-manager: %v)\n", n, namespaces, kcm)
	fmt.Printf("creates took      %.1f s\n", created.Seconds())
	fmt.Printf("converged after   %.1f s (every status.observedGeneration current, every Deployment there)\n", converged.Seconds())
	fmt.Printf("manager writes    %d until converged (%.2f per subscription); %d in all (%.2f per subscription), the last %.1f s after the first create\n",
		atConvergence-writesBefore, float64(atConvergence-writesBefore)/float64(n), settled-writesBefore, float64(settled-writesBefore)/float64(n), quiet.Seconds())
	fmt.Printf("                  by verb and resource: %s\n", byKind)
	fmt.Printf("manager RSS       peak %.1f MiB, now %.1f MiB (%.1f MiB anonymous, %.1f MiB of mapped files: the binary)\n",
		float64(hwm)/(1<<20), float64(rss)/(1<<20), float64(anon)/(1<<20), float64(file)/(1<<20))
	if idle.window > 0 {
		return measureIdle(ctx, admin, auditLog, n, replicas, settle, idle, mgr.Process.Pid)
	}
	return nil
}

// convergedCount counts the subscriptions whose status describes their generation and
// whose Deployment exists.
func convergedCount(ctx context.Context, c client.Client) (int, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(ksubGVK.GroupVersion().WithKind("KafkaSubscriptionList"))
	if err := c.List(ctx, list); err != nil {
		return 0, err
	}
	deps := &metav1.PartialObjectMetadataList{}
	deps.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeploymentList"})
	if err := c.List(ctx, deps); err != nil {
		return 0, err
	}
	have := map[string]bool{}
	for _, d := range deps.Items {
		have[d.Namespace+"/"+d.Name] = true
	}
	n := 0
	for _, k := range list.Items {
		og, _, _ := unstructured.NestedInt64(k.Object, "status", "observedGeneration")
		if og == k.GetGeneration() && have[k.GetNamespace()+"/"+k.GetName()+"-consumer"] {
			n++
		}
	}
	return n, nil
}

// procStatus returns the sizes a process's /proc/<pid>/status gives in kB (VmRSS, VmHWM,
// RssAnon, RssFile, ...), in bytes; empty when the process is gone.
func procStatus(pid int) map[string]int64 {
	out := map[string]int64{}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[2] == "kB" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			out[strings.TrimSuffix(fields[0], ":")] = kb << 10
		}
	}
	return out
}

// memory returns a process's resident set size and its peak (VmRSS, VmHWM), in bytes.
func memory(pid int) (rss, hwm int64) {
	st := procStatus(pid)
	return st["VmRSS"], st["VmHWM"]
}

// rssParts returns a process's anonymous and file-backed resident memory, in bytes.
func rssParts(pid int) (anon, file int64) {
	st := procStatus(pid)
	return st["RssAnon"], st["RssFile"]
}

func readObjects(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) > 0 {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

func readSample(dir string, replicas int) (*unstructured.Unstructured, error) {
	objs, err := readObjects(dir)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GroupVersionKind() == ksubGVK {
			// One replica by default: the sample's database driver may be sqlite; a replica
			// count the API refuses would measure nothing.
			_ = unstructured.SetNestedField(o.Object, int64(replicas), "spec", "replicas")
			return o, nil
		}
	}
	return nil, fmt.Errorf("no KafkaSubscription in %s", dir)
}

func readSecret(dir string) (*unstructured.Unstructured, error) {
	objs, err := readObjects(dir)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			return o, nil
		}
	}
	return nil, fmt.Errorf("no Secret in %s", dir)
}

func log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
