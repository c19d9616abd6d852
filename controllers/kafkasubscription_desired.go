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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kafkasubv1alpha1 "github.com/kafkasub/kafkasub/api/v1alpha1"
	"github.com/kafkasub/kafkasub/consumer"
)

// Naming and labelling conventions of the children of a KafkaSubscription. The ConfigMap,
// Deployment, Service and PodDisruptionBudget of subscription <name> are all named
// ChildName(<name>) = "<name>-consumer" and live in the subscription's namespace.
const (
	// ChildNameSuffix is appended to the subscription's name to name its children.
	ChildNameSuffix = "-consumer"

	// LabelName, LabelInstance, LabelComponent, LabelManagedBy and LabelPartOf are the
	// standard app.kubernetes.io labels on every child and every consumer pod.
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelPartOf    = "app.kubernetes.io/part-of"
	// LabelSubscription carries the subscription's name, for `kubectl get pods -l`.
	LabelSubscription = "kafkasub.io/subscription"

	// AppName is the value of LabelName and LabelPartOf.
	AppName = "kafkasub"
	// ComponentConsumer is the value of LabelComponent on consumer objects.
	ComponentConsumer = "consumer"
	// ManagedBy is the value of LabelManagedBy; the manager's cache only sees children
	// with this label.
	ManagedBy = "kafkasub-operator"

	// AnnotationConfigHash on the pod template is the SHA-256 of the consumer config file;
	// a change of config changes it and so rolls the pods.
	AnnotationConfigHash = "kafkasub.io/config-hash"
	// AnnotationAppliedHash on every child is the SHA-256 of the object as the operator
	// last applied it. A reconcile skips the apply of a child whose live object carries the
	// desired hash and still holds every field the operator sets (see upToDate).
	AnnotationAppliedHash = "kafkasub.io/applied-hash"
)

// Paths and names inside a consumer pod.
const (
	// ContainerName is the name of the consumer container.
	ContainerName = "consumer"
	// ConsumerBinary is the entrypoint of the image; the consumer runs as
	// `/kafkasub consumer --config ConfigFile`.
	ConsumerBinary = "/kafkasub"
	// ConfigDir is where the ConfigMap is mounted; ConfigFile is the consumer's config.
	ConfigDir  = "/etc/kafkasub/config"
	ConfigFile = ConfigDir + "/" + consumer.ConfigFileName
	// SecretsDir is where one projected volume mounts every referenced Secret key as a
	// file, named as below whatever the keys are called; the config file names the paths.
	// The kubelet rewrites the files when a Secret changes, and the consumer restarts on
	// that, so a rotated Secret reaches it without the operator (which cannot read Secrets).
	SecretsDir             = "/etc/kafkasub/secrets"
	SecretFileDatabaseDSN  = "database-dsn"
	SecretFileSASLUsername = "sasl-username"
	SecretFileSASLPassword = "sasl-password"
	SecretFileSentryDSN    = "sentry-dsn"
	// TLSDir holds the TLS files TLSCAFile, TLSCertFile and TLSKeyFile of the same volume.
	TLSDir      = SecretsDir + "/tls"
	TLSCAFile   = "ca.crt"
	TLSCertFile = "tls.crt"
	TLSKeyFile  = "tls.key"
	// TmpDir is a writable emptyDir: the root filesystem is read-only.
	TmpDir = "/tmp"

	// HealthPortName serves /healthz (liveness) and /readyz (readiness).
	HealthPortName = "health"
	// MetricsPortName serves /metrics; the Service exposes it under the same name.
	MetricsPortName = "metrics"

	// RunAsUser is the consumer's user and group (the distroless "nonroot" user).
	RunAsUser = 65532

	configVolume  = "config"
	secretsVolume = "secrets"
	tmpVolume     = "tmp"
)

// DefaultConsumerImage is the consumer image used when neither the subscription nor the
// manager's --consumer-image names one. Release builds set it to the operator's own image
// with -ldflags "-X github.com/kafkasub/kafkasub/controllers.DefaultConsumerImage=<image>".
var DefaultConsumerImage = "kafkasub:dev"

// BuildOptions are the manager-wide inputs of the builders.
type BuildOptions struct {
	// ConsumerImage is used when spec.template.image is empty.
	ConsumerImage string
}

// Desired is every child object of one KafkaSubscription, as the operator applies it.
type Desired struct {
	ConfigMap  *corev1.ConfigMap
	Deployment *appsv1.Deployment
	Service    *corev1.Service
	// PodDisruptionBudget is nil unless more than one replica runs.
	PodDisruptionBudget *policyv1.PodDisruptionBudget
	// ConfigHash is the value of AnnotationConfigHash.
	ConfigHash string
}

// Objects returns the children in the order they are applied: the Deployment, which starts
// and replaces pods, comes last, so a failed apply never leaves pods running without their
// configuration, their metrics Service or their disruption budget.
func (d *Desired) Objects() []client.Object {
	objs := []client.Object{d.ConfigMap, d.Service}
	if d.PodDisruptionBudget != nil {
		objs = append(objs, d.PodDisruptionBudget)
	}
	return append(objs, d.Deployment)
}

// ChildName is the name of every child of the subscription named name.
func ChildName(name string) string { return name + ChildNameSuffix }

// SelectorLabels select the consumer pods of a subscription. They never change, as a
// Deployment's selector cannot.
func SelectorLabels(ksub *kafkasubv1alpha1.KafkaSubscription) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelInstance:  ksub.Name,
		LabelComponent: ComponentConsumer,
	}
}

// StandardLabels are the labels of every child object and consumer pod of a subscription.
func StandardLabels(ksub *kafkasubv1alpha1.KafkaSubscription) map[string]string {
	l := SelectorLabels(ksub)
	l[LabelManagedBy] = ManagedBy
	l[LabelPartOf] = AppName
	l[LabelSubscription] = ksub.Name
	return l
}

// ConsumerConfig renders the consumer configuration of a subscription: everything but the
// secret values, which reach the pod as files under SecretsDir that the configuration
// names. Defaults are filled in so the ConfigMap shows the configuration in effect. It returns an error naming the
// field when the result would not pass the consumer's own validation.
func ConsumerConfig(ksub *kafkasubv1alpha1.KafkaSubscription) (*consumer.Config, error) {
	spec := &ksub.Spec
	c := &consumer.Config{
		Subscription: ksub.Namespace + "/" + ksub.Name,
		Handler:      string(spec.Handler),
		Kafka: consumer.KafkaConfig{
			Topic:         string(spec.Kafka.Topic),
			ConsumerGroup: ksub.ConsumerGroup(),
			InitialOffset: string(spec.Kafka.InitialOffset),
			ClientID:      "kafkasub-" + ksub.Namespace + "-" + ksub.Name,
		},
		DeadLetter: consumer.DeadLetterConfig{Topic: string(spec.DeadLetter.Topic), Create: spec.DeadLetter.Create},
		Retry:      consumer.RetryConfig{MaxAttempts: int(spec.Retry.MaxAttempts)},
		Database: consumer.DatabaseConfig{
			Driver:         string(spec.Database.Driver),
			DSNFile:        path.Join(SecretsDir, SecretFileDatabaseDSN),
			Migrate:        spec.Database.Migrate,
			OffsetTable:    spec.Database.OffsetTable,
			MaxConnections: int(spec.Database.MaxConnections),
		},
	}
	if er := spec.ErrorReporting; er != nil && er.Sentry != nil {
		c.SentryEnabled = true
		c.SentryDSNFile = path.Join(SecretsDir, SecretFileSentryDSN)
	}
	if len(spec.ErrorPolicy) > 0 {
		// The API's names and actions are the consumer's; TestErrorPolicyMatchesTheConsumer keeps them so.
		c.ErrorPolicy = make(map[consumer.ErrorClass]consumer.ErrorAction, len(spec.ErrorPolicy))
		for class, action := range spec.ErrorPolicy {
			c.ErrorPolicy[consumer.ErrorClass(class)] = consumer.ErrorAction(action)
		}
	}
	for _, s := range spec.Kafka.BootstrapServers {
		c.Kafka.BootstrapServers = append(c.Kafka.BootstrapServers, string(s))
	}
	if b := spec.Retry.InitialBackoff; b != nil {
		c.Retry.InitialBackoff.Duration = b.Duration
	}
	if b := spec.Retry.MaxBackoff; b != nil {
		c.Retry.MaxBackoff.Duration = b.Duration
	}
	if tls := spec.Kafka.TLS; tls != nil {
		// A non-nil TLS section turns TLS on; without files the system roots verify the brokers.
		c.Kafka.TLS = &consumer.TLSConfig{}
		if tls.SecretRef != nil {
			c.Kafka.TLS.CAFile = path.Join(TLSDir, TLSCAFile)
			if tls.CertKey != "" {
				c.Kafka.TLS.CertFile = path.Join(TLSDir, TLSCertFile)
				c.Kafka.TLS.KeyFile = path.Join(TLSDir, TLSKeyFile)
			}
		}
	}
	if sasl := spec.Kafka.SASL; sasl != nil {
		c.Kafka.SASL = &consumer.SASLConfig{
			Mechanism:    string(sasl.Mechanism),
			UsernameFile: path.Join(SecretsDir, SecretFileSASLUsername),
			PasswordFile: path.Join(SecretsDir, SecretFileSASLPassword),
		}
	}
	c.Default()

	// Validate as the consumer will, with stand-ins for the secret values the pod reads
	// from its files: what fails here would crash every consumer pod.
	check := *c
	check.DatabaseDSN = "from-secret"
	check.SASLUsername = "from-secret"
	check.SASLPassword = "from-secret"
	check.SentryDSN = "from-secret"
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("the consumer configuration is invalid: %w", err)
	}
	return c, nil
}

// BuildDesired builds every child of a subscription from its spec alone. It is a pure
// function: the same subscription and options give the same objects.
func BuildDesired(ksub *kafkasubv1alpha1.KafkaSubscription, opts BuildOptions) (*Desired, error) {
	cfg, err := ConsumerConfig(ksub)
	if err != nil {
		return nil, err
	}
	data, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal the consumer configuration: %w", err)
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])

	healthPort, err := portOf(cfg.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("healthAddr: %w", err)
	}
	metricsPort, err := portOf(cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metricsAddr: %w", err)
	}

	d := &Desired{ConfigHash: hash}
	d.ConfigMap = &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: childMeta(ksub),
		Data:       map[string]string{consumer.ConfigFileName: string(data)},
	}
	d.Deployment = buildDeployment(ksub, opts, hash, healthPort, metricsPort)
	// Headless: the Service only names the pods to scrape (its EndpointSlices are what a
	// ServiceMonitor or a Prometheus endpoints job reads); a virtual IP per subscription
	// would only use up the cluster's service range.
	d.Service = &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: childMeta(ksub),
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: corev1.ClusterIPNone,
			Selector:  SelectorLabels(ksub),
			Ports: []corev1.ServicePort{{
				Name:       MetricsPortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       metricsPort,
				TargetPort: intstr.FromString(MetricsPortName),
			}},
		},
	}
	if desiredReplicas(ksub) > 1 {
		d.PodDisruptionBudget = &policyv1.PodDisruptionBudget{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: childMeta(ksub),
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: ptr.To(intstr.FromInt32(1)),
				Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(ksub)},
			},
		}
	}
	for _, obj := range d.Objects() {
		if err := stampAppliedHash(obj); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// stampAppliedHash sets AnnotationAppliedHash on obj to the hash of obj without it.
func stampAppliedHash(obj client.Object) error {
	u, err := toApplyObject(obj)
	if err != nil {
		return err
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("hash %s: %w", obj.GetName(), err)
	}
	sum := sha256.Sum256(data)
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationAppliedHash] = hex.EncodeToString(sum[:])
	obj.SetAnnotations(a)
	return nil
}

// desiredReplicas is the Deployment's replica count: 0 when suspended, 1 when unset.
func desiredReplicas(ksub *kafkasubv1alpha1.KafkaSubscription) int32 {
	if ksub.Spec.Suspend {
		return 0
	}
	if ksub.Spec.Replicas == nil {
		return 1
	}
	return *ksub.Spec.Replicas
}

func childMeta(ksub *kafkasubv1alpha1.KafkaSubscription) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      ChildName(ksub.Name),
		Namespace: ksub.Namespace,
		Labels:    StandardLabels(ksub),
		OwnerReferences: []metav1.OwnerReference{
			*metav1.NewControllerRef(ksub, kafkasubv1alpha1.GroupVersion.WithKind("KafkaSubscription")),
		},
	}
}

func buildDeployment(ksub *kafkasubv1alpha1.KafkaSubscription, opts BuildOptions, hash string, healthPort, metricsPort int32) *appsv1.Deployment {
	spec := &ksub.Spec
	tpl := &spec.Template

	image := tpl.Image
	if image == "" {
		image = opts.ConsumerImage
	}
	if image == "" {
		image = DefaultConsumerImage
	}

	podLabels := map[string]string{}
	for k, v := range tpl.Labels {
		podLabels[k] = v
	}
	for k, v := range StandardLabels(ksub) {
		podLabels[k] = v
	}
	podAnnotations := map[string]string{}
	for k, v := range tpl.Annotations {
		podAnnotations[k] = v
	}
	podAnnotations[AnnotationConfigHash] = hash

	volumes := []corev1.Volume{
		{Name: configVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ChildName(ksub.Name)},
			Items:                []corev1.KeyToPath{{Key: consumer.ConfigFileName, Path: consumer.ConfigFileName}},
			DefaultMode:          ptr.To[int32](0o444),
		}}},
		{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: configVolume, MountPath: ConfigDir, ReadOnly: true},
		{Name: tmpVolume, MountPath: TmpDir},
	}
	volumes = append(volumes, corev1.Volume{Name: secretsVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources:     secretProjections(ksub),
		DefaultMode: ptr.To[int32](0o440),
	}}})
	mounts = append(mounts, corev1.VolumeMount{Name: secretsVolume, MountPath: SecretsDir, ReadOnly: true})

	strategy := appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromInt32(1)),
		},
	}
	if spec.Database.Driver == kafkasubv1alpha1.DatabaseDriverSQLite {
		// One SQLite writer at a time: stop the old pod before the new one starts.
		strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}

	container := corev1.Container{
		Name:            ContainerName,
		Image:           image,
		ImagePullPolicy: tpl.ImagePullPolicy,
		Command:         []string{ConsumerBinary},
		Args:            []string{"consumer", "--config", ConfigFile},
		Ports: []corev1.ContainerPort{
			{Name: HealthPortName, ContainerPort: healthPort, Protocol: corev1.ProtocolTCP},
			{Name: MetricsPortName, ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
		},
		Env:          tpl.Env,
		VolumeMounts: mounts,
		LivenessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz", Port: intstr.FromString(HealthPortName), Scheme: corev1.URISchemeHTTP,
			}},
			InitialDelaySeconds: 5,
			PeriodSeconds:       10,
			TimeoutSeconds:      2,
			FailureThreshold:    3,
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/readyz", Port: intstr.FromString(HealthPortName), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds:    5,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if tpl.Resources != nil {
		container.Resources = *tpl.Resources
	}

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: childMeta(ksub),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(desiredReplicas(ksub)),
			Selector:             &metav1.LabelSelector{MatchLabels: SelectorLabels(ksub)},
			Strategy:             strategy,
			RevisionHistoryLimit: ptr.To[int32](5),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					ServiceAccountName:           tpl.ServiceAccountName,
					AutomountServiceAccountToken: ptr.To(false),
					ImagePullSecrets:             tpl.ImagePullSecrets,
					NodeSelector:                 tpl.NodeSelector,
					Tolerations:                  tpl.Tolerations,
					Affinity:                     tpl.Affinity,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](RunAsUser),
						RunAsGroup:     ptr.To[int64](RunAsUser),
						FSGroup:        ptr.To[int64](RunAsUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{container},
					Volumes:    volumes,
				},
			},
		},
	}
}

// secretProjections are the sources of the secrets volume: every referenced Secret key as
// the file the consumer configuration names. The kubelet reads the Secrets; the operator
// never does.
func secretProjections(ksub *kafkasubv1alpha1.KafkaSubscription) []corev1.VolumeProjection {
	project := func(name string, items ...corev1.KeyToPath) corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: name},
			Items:                items,
		}}
	}
	spec := &ksub.Spec
	out := []corev1.VolumeProjection{project(spec.Database.DSNSecretRef.Name,
		corev1.KeyToPath{Key: spec.Database.DSNSecretRef.Key, Path: SecretFileDatabaseDSN})}
	if tls := spec.Kafka.TLS; tls != nil && tls.SecretRef != nil {
		items := []corev1.KeyToPath{{Key: orDefault(tls.CAKey, kafkasubv1alpha1.DefaultTLSCAKey), Path: path.Join("tls", TLSCAFile)}}
		if tls.CertKey != "" {
			items = append(items,
				corev1.KeyToPath{Key: tls.CertKey, Path: path.Join("tls", TLSCertFile)},
				corev1.KeyToPath{Key: tls.KeyKey, Path: path.Join("tls", TLSKeyFile)})
		}
		out = append(out, project(tls.SecretRef.Name, items...))
	}
	if sasl := spec.Kafka.SASL; sasl != nil {
		out = append(out, project(sasl.SecretRef.Name,
			corev1.KeyToPath{Key: orDefault(sasl.UsernameKey, kafkasubv1alpha1.DefaultSASLUsernameKey), Path: SecretFileSASLUsername},
			corev1.KeyToPath{Key: orDefault(sasl.PasswordKey, kafkasubv1alpha1.DefaultSASLPasswordKey), Path: SecretFileSASLPassword}))
	}
	if er := spec.ErrorReporting; er != nil && er.Sentry != nil {
		out = append(out, project(er.Sentry.DSNSecretRef.Name,
			corev1.KeyToPath{Key: er.Sentry.DSNSecretRef.Key, Path: SecretFileSentryDSN}))
	}
	return out
}

// SecretUse is one Secret a subscription references, with the keys it reads and the spec
// fields that name it.
type SecretUse struct {
	Name   string
	Keys   []string
	Fields []string
}

// ReferencedSecrets lists the Secrets a subscription references, sorted by name, one entry
// per Secret.
func ReferencedSecrets(ksub *kafkasubv1alpha1.KafkaSubscription) []SecretUse {
	byName := map[string]*SecretUse{}
	add := func(name, field string, keys ...string) {
		u := byName[name]
		if u == nil {
			u = &SecretUse{Name: name}
			byName[name] = u
		}
		u.Fields = append(u.Fields, field)
		u.Keys = append(u.Keys, keys...)
	}
	spec := &ksub.Spec
	add(spec.Database.DSNSecretRef.Name, "spec.database.dsnSecretRef", spec.Database.DSNSecretRef.Key)
	if tls := spec.Kafka.TLS; tls != nil && tls.SecretRef != nil {
		keys := []string{orDefault(tls.CAKey, kafkasubv1alpha1.DefaultTLSCAKey)}
		if tls.CertKey != "" {
			keys = append(keys, tls.CertKey, tls.KeyKey)
		}
		add(tls.SecretRef.Name, "spec.kafka.tls.secretRef", keys...)
	}
	if sasl := spec.Kafka.SASL; sasl != nil {
		add(sasl.SecretRef.Name, "spec.kafka.sasl.secretRef",
			orDefault(sasl.UsernameKey, kafkasubv1alpha1.DefaultSASLUsernameKey),
			orDefault(sasl.PasswordKey, kafkasubv1alpha1.DefaultSASLPasswordKey))
	}
	if er := spec.ErrorReporting; er != nil && er.Sentry != nil {
		add(er.Sentry.DSNSecretRef.Name, "spec.errorReporting.sentry.dsnSecretRef", er.Sentry.DSNSecretRef.Key)
	}
	out := make([]SecretUse, 0, len(byName))
	for _, u := range byName {
		u.Keys = uniqueSorted(u.Keys)
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// portOf returns the port of a listen address such as ":8081".
func portOf(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q has no valid port", addr)
	}
	return int32(n), nil
}
