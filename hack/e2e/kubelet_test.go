package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kafkasub/kafkasub/consumer"
	"github.com/kafkasub/kafkasub/consumer/cli"
)

// imageEntrypoint is the binary of the kafkasub image (see the Dockerfile); a Pod's command
// naming it runs the binary this test built.
const imageEntrypoint = "/kafkasub"

// kubelet plays the node agent for the Pods of one namespace and label selector: for every
// Pod scheduled to the fake node it starts the real binary with exactly the Pod's command,
// args and env, and it stops the process (SIGTERM, then SIGKILL after the Pod's grace
// period) when the Pod is deleted. kwok owns the Pod's status (Running and Ready at once)
// until the process ends while its Pod lives: then the kubelet reports the container
// terminated with its termination message, restarts it after a back-off and reports it
// waiting in CrashLoopBackOff with the message as its last state (and the Pod not ready),
// as a kubelet with restartPolicy Always does.
//
// What differs from a container, and why:
//   - The image's entrypoint (/kafkasub) is the binary built from this checkout, or the
//     binary kubeletConfig.images names for the container's image.
//   - The termination-message file (terminationMessagePath) is a file of the Pod's
//     directory, named to the consumer by KAFKASUB_TERMINATION_LOG; the back-off starts
//     at 1 s and stops doubling at 8 s (a kubelet's: 10 s and 5 minutes).
//   - Mounted ConfigMaps, Secrets, projected Secrets and emptyDirs are files under
//     <root>/<pod>/<mountPath> (a missing Secret or key is a FailedMount event, as from a
//     kubelet, and the Pod is tried again);
//     args that name a path under a mount path are rewritten to that directory, and so are
//     such paths inside the consumer config file.
//   - There are no network namespaces: a Pod's IP, which kwok gives it from the fake node's
//     podCIDR, is a loopback address, and the consumer config file's healthAddr and
//     metricsAddr (":8081", every address of the container) are rewritten to that IP and
//     the same port, so the operator reaches a consumer's status endpoint at
//     <podIP>:<health port> as in a cluster. The test first checks that they match the
//     container's named ports. A process starts once its Pod has an IP (a kubelet sets up
//     the Pod's network before its containers) and its ports on that IP are free: kwok
//     gives a deleted Pod's IP to a new Pod while the old Pod's process may still stop.
//   - The container environment is the Pod's env (secretKeyRef, configMapKeyRef and
//     fieldRef resolved from the apiserver) plus HOSTNAME and PATH, as a kubelet and the
//     image would set them.
type kubelet struct {
	t        *testing.T
	cp       *controlPlane
	cfg      kubeletConfig
	root     string
	ns       string
	selector labels.Selector

	mu          sync.Mutex
	pods        map[types.UID]*podProcess
	mountErrors map[string]bool
	waitSaid    map[types.UID]bool
	terminating int
	problems    []error
	stopped     []*podProcess

	cancel context.CancelFunc
	done   chan struct{}
}

// kubeletConfig is what the test kubelet runs and what it expects.
type kubeletConfig struct {
	// bin is the binary of the image's entrypoint /kafkasub for every image not in images.
	bin string
	// images maps an image name to the binary its /kafkasub entrypoint is.
	images map[string]string
	// expectCrashes makes a consumer that exits while its Pod lives no problem of the test:
	// for a subscription whose consumers cannot run.
	expectCrashes bool
}

// binary is the binary that runs the entrypoint of image.
func (c kubeletConfig) binary(image string) string {
	if b, ok := c.images[image]; ok {
		return b
	}
	return c.bin
}

// Crash-loop back-off of the test kubelet: it doubles from crashBackOffInitial up to
// crashBackOffMax. A kubelet starts at 10 s and stops doubling at 5 minutes; shorter here
// to keep the test short.
const (
	crashBackOffInitial = time.Second
	crashBackOffMax     = 8 * time.Second
)

// Limits of a termination message, as the kubelet's: the file is read up to
// maxTerminationMessage bytes; with FallbackToLogsOnError an empty file after an error
// gives the log's last fallbackLogLines lines, at most fallbackLogBytes.
const (
	maxTerminationMessage = 4096
	fallbackLogLines      = 80
	fallbackLogBytes      = 2048
)

// podProcess is the consumer of one Pod: its process now, and how earlier ones ended.
type podProcess struct {
	pod        *corev1.Pod
	proc       *process
	dir        string
	bin        string
	args       []string
	env        []string
	workDir    string
	rewrites   []string
	config     *consumer.Config // the consumer config file as materialized
	healthURL  string
	metricsURL string
	stopErr    error

	// termLog is the file the process is told to write its termination message to
	// (KAFKASUB_TERMINATION_LOG), the pod's terminationMessagePath.
	termLog string
	// startedAt is when the current process started.
	startedAt time.Time
	// restarts counts the restarts after a process exited (the container's restartCount).
	restarts int32
	// last is how the last process ended; nil while none has.
	last *corev1.ContainerStateTerminated
	// restartAt is when the exited process is started again; zero while one runs.
	restartAt time.Time
	// backOff is the wait before restartAt.
	backOff time.Duration
}

// startKubelet starts the loop that keeps one process per scheduled Pod.
func startKubelet(t *testing.T, cp *controlPlane, cfg kubeletConfig, ns string, selector map[string]string) *kubelet {
	ctx, cancel := context.WithCancel(context.Background())
	k := &kubelet{
		t: t, cp: cp, cfg: cfg, root: t.TempDir(), ns: ns,
		selector: labels.SelectorFromSet(selector),
		pods:     map[types.UID]*podProcess{},
		waitSaid: map[types.UID]bool{},
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	go k.loop(ctx)
	t.Cleanup(k.stop)
	return k
}

func (k *kubelet) loop(ctx context.Context) {
	defer close(k.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		k.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sync starts processes for new scheduled Pods and stops those whose Pod is gone or
// terminating.
func (k *kubelet) sync(ctx context.Context) {
	var list corev1.PodList
	if err := k.cp.client.List(ctx, &list, client.InNamespace(k.ns), client.MatchingLabelsSelector{Selector: k.selector}); err != nil {
		if ctx.Err() == nil {
			k.t.Logf("kubelet: list pods: %v", err)
		}
		return
	}
	live := map[types.UID]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp == nil && p.Spec.NodeName == nodeName {
			live[p.UID] = p
		}
	}
	k.mu.Lock()
	var toStop []*podProcess
	for uid, pp := range k.pods {
		if _, ok := live[uid]; !ok {
			toStop = append(toStop, pp)
			delete(k.pods, uid)
			k.terminating++
		}
	}
	var toStart []*corev1.Pod
	var ran []*podProcess
	for uid, p := range live {
		pp, ok := k.pods[uid]
		if !ok {
			if p.Status.PodIP != "" {
				toStart = append(toStart, p)
			}
			continue
		}
		if pp.proc != nil {
			ran = append(ran, pp)
		}
	}
	k.mu.Unlock()

	// As the kubelet with restartPolicy Always: a process that ended while its Pod lives
	// is reported in the Pod's status and started again after a back-off.
	for _, pp := range ran {
		k.restartPolicy(ctx, pp, live[pp.pod.UID])
	}

	var wg sync.WaitGroup
	for _, pp := range toStop {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.terminate(pp)
			k.mu.Lock()
			k.terminating--
			k.mu.Unlock()
		}()
	}
	wg.Wait()
	for _, p := range toStart {
		pp, err := k.startPod(ctx, p)
		var me *mountError
		if errors.As(err, &me) {
			// As the kubelet: a FailedMount event on the Pod, and another try later.
			k.reportFailedMount(ctx, p, me)
			continue
		}
		var busy *addrInUseError
		if errors.As(err, &busy) {
			// Tried again on the next tick; said once.
			k.mu.Lock()
			said := k.waitSaid[p.UID]
			k.waitSaid[p.UID] = true
			k.mu.Unlock()
			if !said {
				k.t.Logf("kubelet: pod %s waits: %v", p.Name, busy)
			}
			continue
		}
		k.mu.Lock()
		if err != nil {
			k.problems = append(k.problems, fmt.Errorf("pod %s: %w", p.Name, err))
			// Remember the Pod so that it is not retried every tick; it has no process.
			k.pods[p.UID] = &podProcess{pod: p}
		} else {
			k.pods[p.UID] = pp
		}
		k.mu.Unlock()
		if err == nil {
			k.t.Logf("kubelet: started pod %s: %s %s (rewrites: %s)", p.Name, pp.bin, strings.Join(pp.args, " "), strings.Join(pp.rewrites, "; "))
		}
	}
}

// mountError is a volume the kubelet cannot set up because a Secret or key is missing; the
// message is the kubelet's.
type mountError struct{ volume, msg string }

func (e *mountError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %s", e.volume, e.msg)
}

// addrInUseError is a Pod's listen address that another process still holds: the process
// of a deleted Pod that had the same IP, still stopping.
type addrInUseError struct{ addr string }

func (e *addrInUseError) Error() string {
	return fmt.Sprintf("%s is still in use (a deleted pod's process that had this IP stops)", e.addr)
}

// reportFailedMount records a FailedMount event on the Pod as the kubelet does (once per
// Pod and message here; the kubelet repeats it).
func (k *kubelet) reportFailedMount(ctx context.Context, p *corev1.Pod, me *mountError) {
	k.mu.Lock()
	if k.mountErrors == nil {
		k.mountErrors = map[string]bool{}
	}
	key := string(p.UID) + me.Error()
	seen := k.mountErrors[key]
	k.mountErrors[key] = true
	k.mu.Unlock()
	if seen {
		return
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: p.Name + ".", Namespace: p.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		Reason:         "FailedMount",
		Message:        me.Error(),
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet", Host: nodeName},
		FirstTimestamp: metav1.Now(),
		LastTimestamp:  metav1.Now(),
		Count:          1,
	}
	if err := k.cp.client.Create(ctx, ev); err != nil && ctx.Err() == nil {
		k.t.Logf("kubelet: FailedMount event for pod %s: %v", p.Name, err)
	}
	k.t.Logf("kubelet: pod %s: %s", p.Name, me.Error())
}

// terminate stops a Pod's process as the kubelet would: SIGTERM, and SIGKILL after the
// grace period. A consumer must exit 0 on SIGTERM.
func (k *kubelet) terminate(pp *podProcess) {
	if pp.proc == nil {
		return
	}
	grace := 30 * time.Second
	if g := pp.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if ended, _ := pp.proc.exited(); ended && pp.last != nil && k.cfg.expectCrashes {
		// It crashed and waits for its restart: there is nothing to stop.
		k.mu.Lock()
		k.stopped = append(k.stopped, pp)
		k.mu.Unlock()
		k.t.Logf("kubelet: pod %s gone; its consumer had exited (%d restarts)", pp.pod.Name, pp.restarts)
		return
	}
	start := time.Now()
	err := pp.proc.stop(grace)
	if err == nil {
		// stop() treats death by signal as success; a consumer must exit by itself.
		if st := pp.proc.cmd.ProcessState; st != nil && !st.Exited() {
			err = fmt.Errorf("killed by %s after %s: it did not exit on SIGTERM", st.String(), grace)
		}
	}
	pp.stopErr = err
	k.mu.Lock()
	k.stopped = append(k.stopped, pp)
	if err != nil {
		k.problems = append(k.problems, fmt.Errorf("pod %s: stop: %w; last lines:\n%s", pp.pod.Name, err, pp.proc.tail(20)))
	}
	k.mu.Unlock()
	k.t.Logf("kubelet: pod %s stopped in %s (exit: %v)", pp.pod.Name, time.Since(start).Round(time.Millisecond), orOK(err))
}

func orOK(err error) any {
	if err == nil {
		return "0"
	}
	return err
}

func (k *kubelet) stop() {
	k.cancel()
	<-k.done
	k.mu.Lock()
	pods := k.pods
	k.pods = map[types.UID]*podProcess{}
	k.mu.Unlock()
	for _, pp := range pods {
		k.terminate(pp)
	}
}

// check returns every problem seen so far: a Pod that could not be started, a process that
// exited while its Pod lived, a process that did not stop cleanly.
func (k *kubelet) check() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	errs := append([]error(nil), k.problems...)
	for _, pp := range k.pods {
		if pp.proc == nil || k.cfg.expectCrashes {
			continue
		}
		if ended, err := pp.proc.exited(); ended {
			errs = append(errs, fmt.Errorf("pod %s: the consumer exited while its pod lives (%v); last lines:\n%s", pp.pod.Name, err, pp.proc.tail(20)))
		}
	}
	return errors.Join(errs...)
}

// running returns the processes of the live Pods, by Pod name.
func (k *kubelet) running() []*podProcess {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*podProcess
	for _, pp := range k.pods {
		if pp.proc != nil {
			out = append(out, pp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pod.Name < out[j].pod.Name })
	return out
}

// processes counts the consumer processes that run, terminating ones included.
func (k *kubelet) processes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.terminating
	for _, pp := range k.pods {
		if pp.proc != nil {
			n++
		}
	}
	return n
}

// ready reports whether the process answers its readiness probe with 200, as the kubelet
// would ask it.
func (pp *podProcess) ready(ctx context.Context) (bool, string) {
	return pp.probe(ctx, pp.pod.Spec.Containers[0].ReadinessProbe, "/readyz")
}

// live reports whether the process answers its liveness probe with 200.
func (pp *podProcess) live(ctx context.Context) (bool, string) {
	return pp.probe(ctx, pp.pod.Spec.Containers[0].LivenessProbe, "/healthz")
}

// probe asks the probe's HTTP path (def without a probe) on the process's health port.
func (pp *podProcess) probe(ctx context.Context, p *corev1.Probe, def string) (bool, string) {
	path := def
	if p != nil && p.HTTPGet != nil {
		path = p.HTTPGet.Path
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pp.healthURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, path + " " + resp.Status
}

// startPod resolves the Pod's command, env and volumes and starts its process.
func (k *kubelet) startPod(ctx context.Context, p *corev1.Pod) (*podProcess, error) {
	if n := len(p.Spec.Containers); n != 1 {
		return nil, fmt.Errorf("want 1 container, got %d", n)
	}
	if len(p.Spec.InitContainers) > 0 {
		return nil, errors.New("init containers are not supported by this test")
	}
	c := p.Spec.Containers[0]
	pp := &podProcess{pod: p, dir: filepath.Join(k.root, p.Name)}

	env, err := k.resolveEnv(ctx, p, c)
	if err != nil {
		return nil, err
	}
	mounts, err := k.materializeVolumes(ctx, p, c, pp.dir)
	if err != nil {
		return nil, err
	}

	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(c.Command) == 0 {
		return nil, errors.New("the container has no command; the test runs only the image's /kafkasub entrypoint")
	}
	for i := range argv {
		argv[i] = expandVars(argv[i], env)
	}
	if argv[0] != imageEntrypoint {
		return nil, fmt.Errorf("the command %q is not the image's entrypoint %s", argv[0], imageEntrypoint)
	}
	pp.bin = k.cfg.binary(c.Image)
	pp.rewrites = append(pp.rewrites, fmt.Sprintf("command %s of image %s -> %s", imageEntrypoint, c.Image, pp.bin))
	for i := 1; i < len(argv); i++ {
		if r, ok := rewritePath(argv[i], mounts, pp.dir); ok {
			pp.rewrites = append(pp.rewrites, fmt.Sprintf("arg %s -> %s", argv[i], r))
			argv[i] = r
		}
	}
	pp.args = argv[1:]

	// The consumer config file: check the ports against the container's, then bind them
	// to the Pod's IP.
	if err := k.rewriteConsumerConfig(pp, c, mounts); err != nil {
		return nil, err
	}

	// The container's terminationMessagePath, which a kubelet creates and mounts, is a file
	// of the pod's directory that the consumer is pointed at.
	pp.termLog = filepath.Join(pp.dir, "termination-log")
	pp.rewrites = append(pp.rewrites, fmt.Sprintf("terminationMessagePath %s -> %s=%s", c.TerminationMessagePath, cli.EnvTerminationLog, pp.termLog))
	pp.env = []string{"HOSTNAME=" + p.Name, "PATH=" + os.Getenv("PATH"), cli.EnvTerminationLog + "=" + pp.termLog}
	for _, name := range sortedKeys(env) {
		pp.env = append(pp.env, name+"="+env[name])
	}
	pp.workDir = pp.dir
	if c.WorkingDir != "" {
		pp.workDir = filepath.Join(pp.dir, c.WorkingDir)
		if err := os.MkdirAll(pp.workDir, 0o755); err != nil {
			return nil, err
		}
	}
	if err := pp.start(k.cp.logDir); err != nil {
		return nil, err
	}
	return pp, nil
}

// start starts the Pod's process (again), with an empty termination-message file.
func (pp *podProcess) start(logDir string) error {
	if err := os.WriteFile(pp.termLog, nil, 0o644); err != nil {
		return err
	}
	proc, err := startProcess("pod-"+pp.pod.Name, logDir, pp.workDir, pp.env, pp.bin, pp.args...)
	if err != nil {
		return err
	}
	pp.proc, pp.startedAt, pp.restartAt = proc, time.Now(), time.Time{}
	return nil
}

// restartPolicy handles a Pod whose process ended (restartPolicy Always): it records how
// it ended, reports the container in the Pod's status as the kubelet does (terminated
// with its termination message the first time, then waiting in CrashLoopBackOff with it
// as the last state, and running again after the back-off, not ready), and starts it
// again once the back-off has passed. The Pod's status is written whenever it differs
// from that, so kwok's Ready from the Pod's start does not stay.
func (k *kubelet) restartPolicy(ctx context.Context, pp *podProcess, pod *corev1.Pod) {
	ended, _ := pp.proc.exited()
	switch {
	case ended && pp.restartAt.IsZero():
		k.recordExit(pp)
	case ended && time.Now().After(pp.restartAt):
		k.mu.Lock()
		err := pp.start(k.cp.logDir)
		if err == nil {
			pp.restarts++
		}
		k.mu.Unlock()
		if err != nil {
			k.t.Logf("kubelet: restart pod %s: %v", pp.pod.Name, err)
			return
		}
		k.t.Logf("kubelet: restarted pod %s (restart %d)", pp.pod.Name, pp.restarts)
	}
	if pp.last == nil {
		return // kwok's status stands while the first process runs
	}
	want := pp.containerStatus(pod.Spec.Containers[0])
	if len(pod.Status.ContainerStatuses) == 1 && containerStatusKey(pod.Status.ContainerStatuses[0]) == containerStatusKey(want) {
		return
	}
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{want}
	for _, typ := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		setPodCondition(p, corev1.PodCondition{
			Type: typ, Status: corev1.ConditionFalse, Reason: "ContainersNotReady",
			Message: fmt.Sprintf("containers with unready status: [%s]", want.Name),
		})
	}
	if err := k.cp.client.Status().Update(ctx, p); err != nil {
		if ctx.Err() == nil {
			k.t.Logf("kubelet: update the status of pod %s: %v (tried again)", p.Name, err)
		}
		return
	}
	k.t.Logf("kubelet: pod %s: container %s", p.Name, describeContainerStatus(want))
}

// recordExit records how the Pod's process ended and when it is started again.
func (k *kubelet) recordExit(pp *podProcess) {
	st := pp.proc.cmd.ProcessState
	code := st.ExitCode()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	term := &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: "Completed",
		StartedAt: metav1.NewTime(pp.startedAt), FinishedAt: metav1.Now(),
	}
	if code != 0 {
		term.Reason = "Error"
	}
	if b, err := os.ReadFile(pp.termLog); err == nil {
		if len(b) > maxTerminationMessage {
			b = b[:maxTerminationMessage]
		}
		term.Message = string(b)
	}
	if term.Message == "" && code != 0 && pp.pod.Spec.Containers[0].TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		tail := pp.proc.tail(fallbackLogLines)
		if len(tail) > fallbackLogBytes {
			tail = tail[len(tail)-fallbackLogBytes:]
		}
		term.Message = tail
	}
	switch {
	case pp.backOff == 0:
		pp.backOff = crashBackOffInitial
	case pp.backOff < crashBackOffMax:
		pp.backOff = min(2*pp.backOff, crashBackOffMax)
	}
	k.mu.Lock()
	pp.last = term
	pp.restartAt = time.Now().Add(pp.backOff)
	if !k.cfg.expectCrashes {
		k.problems = append(k.problems, fmt.Errorf("pod %s: the consumer exited while its pod lives (exit code %d, termination message %q); last lines:\n%s",
			pp.pod.Name, code, term.Message, pp.proc.tail(20)))
	}
	k.mu.Unlock()
	k.t.Logf("kubelet: pod %s: the consumer exited with code %d, termination message %q; restart in %s", pp.pod.Name, code, term.Message, pp.backOff)
}

// containerStatus is the container's status after its process ended at least once.
func (pp *podProcess) containerStatus(c corev1.Container) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: pp.restarts}
	switch ended, _ := pp.proc.exited(); {
	case ended && pp.restarts == 0:
		cs.State.Terminated = pp.last
	case ended:
		cs.State.Waiting = &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", pp.backOff, c.Name, pp.pod.Name, pp.pod.Namespace, pp.pod.UID),
		}
		cs.LastTerminationState.Terminated = pp.last
	default:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(pp.startedAt)}
		cs.LastTerminationState.Terminated = pp.last
	}
	return cs
}

// containerStatusKey is what restartPolicy keeps in step with the process.
func containerStatusKey(cs corev1.ContainerStatus) string {
	return fmt.Sprintf("%t|%d|%s", cs.Ready, cs.RestartCount, describeContainerStatus(cs))
}

// describeContainerStatus is a one-line account of a container's state and last state.
func describeContainerStatus(cs corev1.ContainerStatus) string {
	state := func(s corev1.ContainerState) string {
		switch {
		case s.Running != nil:
			return "running"
		case s.Waiting != nil:
			return "waiting " + s.Waiting.Reason
		case s.Terminated != nil:
			return fmt.Sprintf("terminated %s exit code %d: %q", s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.Message)
		}
		return "none"
	}
	return fmt.Sprintf("%s, last state %s, restart count %d, ready %t", state(cs.State), state(cs.LastTerminationState), cs.RestartCount, cs.Ready)
}

// setPodCondition sets c on the Pod, replacing the condition of the same type.
func setPodCondition(p *corev1.Pod, c corev1.PodCondition) {
	c.LastTransitionTime = metav1.Now()
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == c.Type {
			if p.Status.Conditions[i].Status == c.Status {
				c.LastTransitionTime = p.Status.Conditions[i].LastTransitionTime
			}
			p.Status.Conditions[i] = c
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}

// resolveEnv evaluates the container's env and envFrom against the apiserver.
func (k *kubelet) resolveEnv(ctx context.Context, p *corev1.Pod, c corev1.Container) (map[string]string, error) {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		var data map[string]string
		var optional *bool
		switch {
		case from.ConfigMapRef != nil:
			optional = from.ConfigMapRef.Optional
			var cm corev1.ConfigMap
			if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: from.ConfigMapRef.Name}, &cm); err != nil {
				if ignoreNotFound(err) == nil && optional != nil && *optional {
					continue
				}
				return nil, fmt.Errorf("envFrom configMap %s: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			optional = from.SecretRef.Optional
			var s corev1.Secret
			if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: from.SecretRef.Name}, &s); err != nil {
				if ignoreNotFound(err) == nil && optional != nil && *optional {
					continue
				}
				return nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for key, v := range s.Data {
				data[key] = string(v)
			}
		}
		for key, v := range data {
			env[from.Prefix+key] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expandVars(e.Value, env)
			continue
		}
		v, err := k.resolveEnvSource(ctx, p, e)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if v != nil {
			env[e.Name] = *v
		}
	}
	return env, nil
}

func (k *kubelet) resolveEnvSource(ctx context.Context, p *corev1.Pod, e corev1.EnvVar) (*string, error) {
	src := e.ValueFrom
	switch {
	case src.SecretKeyRef != nil:
		var s corev1.Secret
		if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: src.SecretKeyRef.Name}, &s); err != nil {
			if ignoreNotFound(err) == nil && src.SecretKeyRef.Optional != nil && *src.SecretKeyRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("secretKeyRef %s: %w", src.SecretKeyRef.Name, err)
		}
		v, ok := s.Data[src.SecretKeyRef.Key]
		if !ok {
			if src.SecretKeyRef.Optional != nil && *src.SecretKeyRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("secret %s has no key %q", src.SecretKeyRef.Name, src.SecretKeyRef.Key)
		}
		str := string(v)
		return &str, nil
	case src.ConfigMapKeyRef != nil:
		var cm corev1.ConfigMap
		if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: src.ConfigMapKeyRef.Name}, &cm); err != nil {
			if ignoreNotFound(err) == nil && src.ConfigMapKeyRef.Optional != nil && *src.ConfigMapKeyRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("configMapKeyRef %s: %w", src.ConfigMapKeyRef.Name, err)
		}
		v, ok := cm.Data[src.ConfigMapKeyRef.Key]
		if !ok {
			if src.ConfigMapKeyRef.Optional != nil && *src.ConfigMapKeyRef.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("configMap %s has no key %q", src.ConfigMapKeyRef.Name, src.ConfigMapKeyRef.Key)
		}
		return &v, nil
	case src.FieldRef != nil:
		var v string
		switch src.FieldRef.FieldPath {
		case "metadata.name":
			v = p.Name
		case "metadata.namespace":
			v = p.Namespace
		case "metadata.uid":
			v = string(p.UID)
		case "spec.nodeName":
			v = p.Spec.NodeName
		case "spec.serviceAccountName":
			v = p.Spec.ServiceAccountName
		case "status.podIP":
			v = p.Status.PodIP
		case "status.hostIP":
			v = p.Status.HostIP
		default:
			return nil, fmt.Errorf("fieldRef %s is not supported by this test", src.FieldRef.FieldPath)
		}
		return &v, nil
	}
	return nil, errors.New("only secretKeyRef, configMapKeyRef and fieldRef are supported by this test")
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandVars expands $(NAME) references to earlier env values, as the kubelet does; an
// unknown reference stays as written.
func expandVars(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// materializeVolumes writes the container's mounted ConfigMaps and Secrets (and creates
// its emptyDirs) under dir, and returns the mount paths, longest first.
func (k *kubelet) materializeVolumes(ctx context.Context, p *corev1.Pod, c corev1.Container, dir string) ([]string, error) {
	volumes := map[string]corev1.Volume{}
	for _, v := range p.Spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []string
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			return nil, fmt.Errorf("volume mount %s: subPath is not supported by this test", m.Name)
		}
		v, ok := volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %s names no volume of the pod", m.Name)
		}
		target := filepath.Join(dir, m.MountPath)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return nil, err
		}
		mounts = append(mounts, path.Clean(m.MountPath))
		switch {
		case v.ConfigMap != nil:
			var cm corev1.ConfigMap
			if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: v.ConfigMap.Name}, &cm); err != nil {
				return nil, fmt.Errorf("volume %s: configMap %s: %w", v.Name, v.ConfigMap.Name, err)
			}
			data := map[string][]byte{}
			for key, val := range cm.Data {
				data[key] = []byte(val)
			}
			for key, val := range cm.BinaryData {
				data[key] = val
			}
			if err := writeItems(target, data, v.ConfigMap.Items, v.ConfigMap.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.Secret != nil:
			var s corev1.Secret
			if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: v.Secret.SecretName}, &s); err != nil {
				return nil, fmt.Errorf("volume %s: secret %s: %w", v.Name, v.Secret.SecretName, err)
			}
			if err := writeItems(target, s.Data, v.Secret.Items, v.Secret.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				switch {
				case src.Secret != nil:
					var s corev1.Secret
					if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: src.Secret.Name}, &s); err != nil {
						if ignoreNotFound(err) == nil {
							return nil, &mountError{volume: v.Name, msg: fmt.Sprintf("secret %q not found", src.Secret.Name)}
						}
						return nil, fmt.Errorf("volume %s: secret %s: %w", v.Name, src.Secret.Name, err)
					}
					for _, it := range src.Secret.Items {
						if _, ok := s.Data[it.Key]; !ok {
							return nil, &mountError{volume: v.Name, msg: "references non-existent secret key: " + it.Key}
						}
					}
					if err := writeItems(target, s.Data, src.Secret.Items, v.Projected.DefaultMode); err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
				case src.ConfigMap != nil:
					var cm corev1.ConfigMap
					if err := k.cp.client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: src.ConfigMap.Name}, &cm); err != nil {
						return nil, fmt.Errorf("volume %s: configMap %s: %w", v.Name, src.ConfigMap.Name, err)
					}
					data := map[string][]byte{}
					for key, val := range cm.Data {
						data[key] = []byte(val)
					}
					if err := writeItems(target, data, src.ConfigMap.Items, v.Projected.DefaultMode); err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
				default:
					return nil, fmt.Errorf("volume %s: only Secret and ConfigMap projections are supported by this test", v.Name)
				}
			}
		case v.EmptyDir != nil:
			// The directory is enough.
		default:
			return nil, fmt.Errorf("volume %s: only configMap, secret, projected and emptyDir volumes are supported by this test", v.Name)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, nil
}

// writeItems writes the selected keys (all keys when items is empty) as files.
func writeItems(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) error {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	if len(items) == 0 {
		for key := range data {
			items = append(items, corev1.KeyToPath{Key: key, Path: key})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("no key %q", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		f := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		// Root reads any mode; keep the file readable for a non-root test run too.
		if err := os.WriteFile(f, val, m|0o400); err != nil {
			return err
		}
	}
	return nil
}

// rewritePath maps a container path (or --flag=path) under one of the mount paths to the
// materialized directory.
func rewritePath(arg string, mounts []string, dir string) (string, bool) {
	prefix, p := "", arg
	if i := strings.Index(arg, "="); i >= 0 && strings.HasPrefix(arg, "-") {
		prefix, p = arg[:i+1], arg[i+1:]
	}
	if !path.IsAbs(p) {
		return arg, false
	}
	for _, m := range mounts {
		if p == m || strings.HasPrefix(p, m+"/") {
			return prefix + filepath.Join(dir, p), true
		}
	}
	return arg, false
}

// rewriteConsumerConfig finds the consumer config file among the args, checks that its
// healthAddr and metricsAddr ports are the container's named ports, and rewrites them to
// the Pod's IP with the same ports (and paths under mounts to the materialized files).
func (k *kubelet) rewriteConsumerConfig(pp *podProcess, c corev1.Container, mounts []string) error {
	var file string
	for i, a := range pp.args {
		switch {
		case a == "--config" && i+1 < len(pp.args):
			file = pp.args[i+1]
		case strings.HasPrefix(a, "--config="):
			file = strings.TrimPrefix(a, "--config=")
		}
	}
	if file == "" {
		return fmt.Errorf("the args %q name no --config file", pp.args)
	}
	if !strings.HasPrefix(file, pp.dir+string(filepath.Separator)) {
		return fmt.Errorf("the config file %s is not in a mounted volume", file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("the consumer config file: %w", err)
	}
	cfg, err := consumer.Parse(data)
	if err != nil {
		return err
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, check := range []struct{ field, addr, port string }{
		{"healthAddr", cfg.HealthAddr, healthPortName(c)},
		{"metricsAddr", cfg.MetricsAddr, "metrics"},
	} {
		_, p, err := net.SplitHostPort(check.addr)
		if err != nil {
			return fmt.Errorf("consumer config %s %q: %w", check.field, check.addr, err)
		}
		if want, ok := ports[check.port]; !ok || strconv.Itoa(int(want)) != p {
			return fmt.Errorf("consumer config %s %q does not match the container port %q (%d)", check.field, check.addr, check.port, want)
		}
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	health, err := podAddr(pp.pod.Status.PodIP, cfg.HealthAddr)
	if err != nil {
		return err
	}
	metrics, err := podAddr(pp.pod.Status.PodIP, cfg.MetricsAddr)
	if err != nil {
		return err
	}
	for _, addr := range []string{health, metrics} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return &addrInUseError{addr: addr}
			}
			return fmt.Errorf("the pod's address %s: %w", addr, err)
		}
		l.Close()
	}
	doc["healthAddr"] = health
	doc["metricsAddr"] = metrics
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for key, val := range x {
				x[key] = walk(val)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case string:
			if r, ok := rewritePath(x, mounts, pp.dir); ok {
				pp.rewrites = append(pp.rewrites, fmt.Sprintf("config %s -> %s", x, r))
				return r
			}
		}
		return v
	}
	walk(doc)
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return err
	}
	pp.rewrites = append(pp.rewrites,
		fmt.Sprintf("config healthAddr %s -> %s", cfg.HealthAddr, health),
		fmt.Sprintf("config metricsAddr %s -> %s", cfg.MetricsAddr, metrics))
	pp.config = cfg
	pp.healthURL = "http://" + health
	pp.metricsURL = "http://" + metrics
	return nil
}

// healthPortName is the port the readiness probe names.
func healthPortName(c corev1.Container) string {
	if rp := c.ReadinessProbe; rp != nil && rp.HTTPGet != nil && rp.HTTPGet.Port.StrVal != "" {
		return rp.HTTPGet.Port.StrVal
	}
	return "health"
}

// podAddr is a container's listen address addr (":8081", or a host and a port) on the
// Pod's IP: the address that the Pod's IP and the port reach in a cluster.
func podAddr(podIP, addr string) (string, error) {
	if net.ParseIP(podIP) == nil {
		return "", fmt.Errorf("the pod has no IP address (%q)", podIP)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	return net.JoinHostPort(podIP, port), nil
}

// freePort returns a loopback host:port that is free now.
func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
