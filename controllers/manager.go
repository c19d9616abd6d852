/*
Copyright 2026 The kafkasub Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// Flags of `kafkasub manager`.
const (
	FlagMetricsBindAddress      = "metrics-bind-address"
	FlagHealthProbeBindAddress  = "health-probe-bind-address"
	FlagLeaderElect             = "leader-elect"
	FlagLeaderElectionID        = "leader-election-id"
	FlagLeaderElectionNamespace = "leader-election-namespace"
	FlagConsumerImage           = "consumer-image"
	FlagMaxConcurrentReconciles = "max-concurrent-reconciles"
	FlagWatchNamespaces         = "watch-namespaces"
	FlagKubeAPIQPS              = "kube-api-qps"
	FlagKubeAPIBurst            = "kube-api-burst"
	FlagPprofAddr               = "pprof-addr"
	FlagStatusPollInterval      = "status-poll-interval"
)

// EnvConsumerImage sets the default of --consumer-image, so a Deployment can pass the
// operator's own image (one image for both) without repeating it in the args.
const EnvConsumerImage = "KAFKASUB_CONSUMER_IMAGE"

// DefaultLeaderElectionID is the name of the leader election Lease.
const DefaultLeaderElectionID = "kafkasub-operator.kafkasub.io"

// Defaults sized for about 1,000 subscriptions: converging one takes about five writes
// (ConfigMap, Service, Deployment, status, event), so 1,000 need about 5,000 requests,
// under 30 s at 200 per second; a reconcile spends most of its time waiting for the API
// server, so 8 run in parallel (see hack/scale for the measurement).
const (
	// DefaultGCPercent is the manager's GOGC unless $GOGC is set. Its live heap is mostly
	// the informer caches (about 26 MiB for 1,000 subscriptions); Go's default of 100 lets
	// the heap grow to twice that between collections, 50 to one and a half, which keeps
	// the resident set of 1,000 subscriptions under 100 MiB for a little more GC work.
	DefaultGCPercent               = 50
	DefaultMaxConcurrentReconciles = 8
	DefaultKubeAPIQPS              = 200
	DefaultKubeAPIBurst            = 400
)

// ManagerOptions configure the operator.
type ManagerOptions struct {
	// MetricsBindAddress serves the operator's /metrics; "0" turns it off.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz.
	HealthProbeBindAddress string
	// LeaderElect makes only one replica of the operator reconcile at a time.
	LeaderElect bool
	// LeaderElectionID is the Lease's name.
	LeaderElectionID string
	// LeaderElectionNamespace is the Lease's namespace; the pod's namespace when empty.
	LeaderElectionNamespace string
	// ConsumerImage is the consumer image of subscriptions that name none.
	ConsumerImage string
	// MaxConcurrentReconciles bounds the subscriptions reconciled in parallel.
	MaxConcurrentReconciles int
	// WatchNamespaces limits the operator to these namespaces (all when empty), so it
	// needs RBAC only there: a RoleBinding of the manager ClusterRole per namespace.
	WatchNamespaces []string
	// KubeAPIQPS and KubeAPIBurst bound the requests per second to the API server (a token
	// bucket of KubeAPIBurst refilled at KubeAPIQPS). Reads come from the cache, so these
	// bound writes and the initial lists; a negative QPS turns the client-side limit off
	// and leaves it to the API server's priority and fairness.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// PprofAddr serves Go profiles (net/http/pprof) when set; a port without a host binds
	// loopback only (consumer.PprofAddr).
	PprofAddr string
	// StatusPollInterval is how often the operator asks a subscription's running consumer
	// pods for their status (consumer.StatusPath) at most.
	StatusPollInterval time.Duration
	// SkipNameValidation allows more than one manager in a process (tests).
	SkipNameValidation bool
}

// DefaultManagerOptions are the defaults of the manager flags.
func DefaultManagerOptions() ManagerOptions {
	image := os.Getenv(EnvConsumerImage)
	if image == "" {
		image = DefaultConsumerImage
	}
	return ManagerOptions{
		MetricsBindAddress:      ":8080",
		HealthProbeBindAddress:  ":8081",
		LeaderElectionID:        DefaultLeaderElectionID,
		ConsumerImage:           image,
		MaxConcurrentReconciles: DefaultMaxConcurrentReconciles,
		KubeAPIQPS:              DefaultKubeAPIQPS,
		KubeAPIBurst:            DefaultKubeAPIBurst,
		StatusPollInterval:      DefaultStatusPollInterval,
	}
}

// Scheme returns a scheme with the Kubernetes types and the KafkaSubscription API.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := kafkasubv1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewManager builds a manager with the KafkaSubscription controller registered. The cache
// holds only children and consumer pods labelled app.kubernetes.io/managed-by=kafkasub-operator
// (pods cut down to what SecretProblems reads), and only FailedMount events.
func NewManager(ctx context.Context, cfg *rest.Config, opts ManagerOptions) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	if opts.KubeAPIQPS != 0 {
		cfg.QPS = opts.KubeAPIQPS
	}
	if opts.KubeAPIBurst != 0 {
		cfg.Burst = opts.KubeAPIBurst
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	owned := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})
	var namespaces map[string]cache.Config
	if len(opts.WatchNamespaces) > 0 {
		namespaces = map[string]cache.Config{}
		for _, ns := range opts.WatchNamespaces {
			namespaces[ns] = cache.Config{}
		}
	}
	var pprof string
	if opts.PprofAddr != "" {
		if pprof, err = consumer.PprofAddr(opts.PprofAddr); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		PprofBindAddress:        pprof,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionID:        opts.LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Stop reconciling at once when leadership is lost: a new leader takes over.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			DefaultNamespaces: namespaces,
			DefaultTransform:  cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&appsv1.Deployment{}:            {Label: owned},
				&corev1.ConfigMap{}:             {Label: owned},
				&corev1.Service{}:               {Label: owned},
				&policyv1.PodDisruptionBudget{}: {Label: owned},
				&corev1.Pod{}:                   {Label: owned, Transform: slimPod},
				&corev1.Event{}:                 {Field: fields.OneTermEqualSelector("reason", reasonFailedMount), Transform: slimEvent},
			},
		},
		Controller: controllerConfig(opts),
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	r := &KafkaSubscriptionReconciler{
		Client:    mgr.GetClient(),
		Recorder:  mgr.GetEventRecorder(FieldManager),
		Options:   BuildOptions{ConsumerImage: opts.ConsumerImage},
		Consumers: NewConsumerPoller(opts.StatusPollInterval),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the KafkaSubscription controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add ready check: %w", err)
	}
	return mgr, nil
}

// NewManagerCommand returns the `kafkasub manager` subcommand that runs the operator
// against the cluster of the current kubeconfig (or the pod's service account).
func NewManagerCommand() *cobra.Command {
	opts := DefaultManagerOptions()
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the KafkaSubscription operator",
		Long: "Run the operator: it reconciles every KafkaSubscription into a consumer ConfigMap,\n" +
			"Deployment, metrics Service and (with more than one replica) PodDisruptionBudget.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
			if _, set := os.LookupEnv("GOGC"); !set {
				debug.SetGCPercent(DefaultGCPercent)
			}
			if opts.ConsumerImage == "" {
				return fmt.Errorf("--%s must not be empty", FlagConsumerImage)
			}
			for _, ns := range opts.WatchNamespaces {
				if errs := validation.IsDNS1123Label(ns); ns == "" || len(errs) > 0 {
					return fmt.Errorf("--%s: %q is not a namespace name: %s", FlagWatchNamespaces, ns, strings.Join(errs, "; "))
				}
			}
			if opts.KubeAPIQPS == 0 || opts.KubeAPIBurst < 1 {
				return fmt.Errorf("--%s must not be 0 (negative turns the limit off) and --%s must be at least 1, got %v and %d",
					FlagKubeAPIQPS, FlagKubeAPIBurst, opts.KubeAPIQPS, opts.KubeAPIBurst)
			}
			if opts.MaxConcurrentReconciles < 1 {
				return fmt.Errorf("--%s must be at least 1, got %d", FlagMaxConcurrentReconciles, opts.MaxConcurrentReconciles)
			}
			if opts.StatusPollInterval < time.Second {
				return fmt.Errorf("--%s must be at least 1s, got %s", FlagStatusPollInterval, opts.StatusPollInterval)
			}
			if opts.PprofAddr != "" {
				if _, err := consumer.PprofAddr(opts.PprofAddr); err != nil {
					return err
				}
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("load kubeconfig: %w", err)
			}
			mgr, err := NewManager(cmd.Context(), cfg, opts)
			if err != nil {
				return err
			}
			ctrl.Log.WithName("setup").Info("Starting manager", "consumerImage", opts.ConsumerImage, "watchNamespaces", opts.WatchNamespaces,
				"leaderElect", opts.LeaderElect, "metrics", opts.MetricsBindAddress, "health", opts.HealthProbeBindAddress)
			return mgr.Start(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.MetricsBindAddress, FlagMetricsBindAddress, opts.MetricsBindAddress, `address of the operator's /metrics endpoint ("0" turns it off)`)
	f.StringVar(&opts.HealthProbeBindAddress, FlagHealthProbeBindAddress, opts.HealthProbeBindAddress, "address of the /healthz and /readyz endpoints")
	f.BoolVar(&opts.LeaderElect, FlagLeaderElect, opts.LeaderElect, "elect a leader so only one operator replica reconciles at a time")
	f.StringVar(&opts.LeaderElectionID, FlagLeaderElectionID, opts.LeaderElectionID, "name of the leader election Lease")
	f.StringVar(&opts.LeaderElectionNamespace, FlagLeaderElectionNamespace, opts.LeaderElectionNamespace, "namespace of the leader election Lease (default: the pod's namespace)")
	f.StringVar(&opts.ConsumerImage, FlagConsumerImage, opts.ConsumerImage, "consumer image of subscriptions without spec.template.image (default from $"+EnvConsumerImage+")")
	f.StringSliceVar(&opts.WatchNamespaces, FlagWatchNamespaces, opts.WatchNamespaces, "comma-separated namespaces to reconcile subscriptions in (default: all namespaces)")
	f.IntVar(&opts.MaxConcurrentReconciles, FlagMaxConcurrentReconciles, opts.MaxConcurrentReconciles, "subscriptions reconciled in parallel")
	f.Float32Var(&opts.KubeAPIQPS, FlagKubeAPIQPS, opts.KubeAPIQPS, "requests per second to the API server (negative: no client-side limit)")
	f.StringVar(&opts.PprofAddr, FlagPprofAddr, opts.PprofAddr, "serve Go profiles (net/http/pprof) at this address, e.g. :6060; off when empty; a port without a host binds loopback only")
	f.DurationVar(&opts.StatusPollInterval, FlagStatusPollInterval, opts.StatusPollInterval, "least time between two polls of a subscription's consumer pods' status endpoints (lag, dead letters, last error, database, group)")
	f.IntVar(&opts.KubeAPIBurst, FlagKubeAPIBurst, opts.KubeAPIBurst, "requests to the API server allowed in a burst above --"+FlagKubeAPIQPS)
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(goFlags)
	f.AddGoFlagSet(goFlags)
	// --kubeconfig, registered by controller-runtime; $KUBECONFIG and the in-cluster
	// service account work without it.
	if kc := flag.CommandLine.Lookup(ctrlconfig.KubeconfigFlagName); kc != nil {
		f.AddGoFlag(kc)
	}
	return cmd
}

func controllerConfig(opts ManagerOptions) config.Controller {
	c := config.Controller{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}
	if opts.SkipNameValidation {
		c.SkipNameValidation = &opts.SkipNameValidation
	}
	return c
}

// slimPod keeps of a consumer pod what the controller reads: its identity, labels, the
// state of its containers, and where its status endpoint is (phase, IP, container ports).
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
		Labels: p.Labels, DeletionTimestamp: p.DeletionTimestamp,
	}}
	slim.Status.Phase = p.Status.Phase
	slim.Status.PodIP = p.Status.PodIP
	for _, c := range p.Spec.Containers {
		slim.Spec.Containers = append(slim.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports})
	}
	for _, cs := range p.Status.ContainerStatuses {
		slim.Status.ContainerStatuses = append(slim.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: cs.Name, State: cs.State, LastTerminationState: cs.LastTerminationState, RestartCount: cs.RestartCount,
		})
	}
	return slim, nil
}

// slimEvent keeps of a FailedMount event what SecretProblems reads.
func slimEvent(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: e.Name, Namespace: e.Namespace, UID: e.UID, ResourceVersion: e.ResourceVersion},
		InvolvedObject: e.InvolvedObject,
		Reason:         e.Reason,
		Message:        e.Message,
	}, nil
}
