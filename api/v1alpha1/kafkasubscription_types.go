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

package v1alpha1

import (
	"regexp"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Doc comments here are one line per paragraph: controller-gen copies line breaks into the CRD's descriptions, and `kubectl explain` would show them mid-sentence.

// Handler names a message handler compiled into the consumer image: the name its package registers with consumer.Register, e.g. inventory.product-updates. Any name of HandlerNamePattern is accepted; the operator cannot know what an image contains, so a consumer whose image lacks the handler exits with a termination message naming the registered ones, and the subscription turns Degraded with reason HandlerNotRegistered.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="a handler name may contain only lowercase letters, digits, '-' and '.', and must start and end with a letter or digit, e.g. inventory.product-updates"
type Handler string

// What the API accepts as a handler name; the markers on Handler spell the same (a test keeps them in step), and a test of the consumer binary checks every registered handler against it.
const (
	// HandlerNamePattern is the regular expression a handler name matches: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit.
	HandlerNamePattern = `^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// HandlerNameMaxLength is the longest handler name, in bytes.
	HandlerNameMaxLength = 253
)

var handlerName = regexp.MustCompile(HandlerNamePattern)

// ValidHandlerName reports whether the API accepts name as spec.handler.
func ValidHandlerName(name string) bool {
	return len(name) <= HandlerNameMaxLength && handlerName.MatchString(name)
}

// TopicName is a Kafka topic name: 1 to 249 ASCII letters, digits, '.', '_' and '-', and neither "." nor "..".
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=249
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9._-]+$')",message="a Kafka topic name may contain only ASCII letters, digits, '.', '_' and '-'"
// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="a Kafka topic name cannot be '.' or '..'"
type TopicName string

// BootstrapServer is one Kafka broker address as host:port, e.g. kafka.kafka:9092 or [::1]:9092.
// +kubebuilder:validation:MinLength=3
// +kubebuilder:validation:MaxLength=261
// +kubebuilder:validation:XValidation:rule="self.matches('^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[[][0-9A-Fa-f:.]+[]]):[0-9]{1,5}$') && int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535",message="a bootstrap server must be host:port with a port from 1 to 65535, e.g. kafka.kafka:9092 or [::1]:9092"
type BootstrapServer string

// InitialOffset is where a consumer group without a committed offset starts reading.
// +kubebuilder:validation:Enum=earliest;latest
type InitialOffset string

// Initial offsets.
const (
	// InitialOffsetEarliest starts at the oldest message the topic still holds.
	InitialOffsetEarliest InitialOffset = "earliest"
	// InitialOffsetLatest starts with the messages produced after the group first joins.
	InitialOffsetLatest InitialOffset = "latest"
)

// SASLMechanism is how the consumer authenticates to the brokers.
// +kubebuilder:validation:Enum=PLAIN;SCRAM-SHA-256;SCRAM-SHA-512
type SASLMechanism string

// SASL mechanisms.
const (
	SASLMechanismPlain       SASLMechanism = "PLAIN"
	SASLMechanismSCRAMSHA256 SASLMechanism = "SCRAM-SHA-256"
	SASLMechanismSCRAMSHA512 SASLMechanism = "SCRAM-SHA-512"
)

// DatabaseDriver selects the database the handler writes to.
// +kubebuilder:validation:Enum=postgres;mysql;sqlite
type DatabaseDriver string

// Database drivers.
const (
	DatabaseDriverPostgres DatabaseDriver = "postgres"
	DatabaseDriverMySQL    DatabaseDriver = "mysql"
	DatabaseDriverSQLite   DatabaseDriver = "sqlite"
)

// Default keys in the Secrets a subscription references.
const (
	// DefaultTLSCAKey is the key of the CA bundle in the TLS Secret.
	DefaultTLSCAKey = "ca.crt"
	// DefaultSASLUsernameKey is the key of the SASL username in the SASL Secret.
	DefaultSASLUsernameKey = "username"
	// DefaultSASLPasswordKey is the key of the SASL password in the SASL Secret.
	DefaultSASLPasswordKey = "password"
)

// SecretReference names a Secret in the subscription's namespace.
type SecretReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="a Secret name may contain only lowercase letters, digits, '-' and '.', and must start and end with a letter or digit"
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the subscription's namespace.
type SecretKeyReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="a Secret name may contain only lowercase letters, digits, '-' and '.', and must start and end with a letter or digit"
	Name string `json:"name"`
	// key is the key within the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="a Secret key may contain only letters, digits, '-', '_' and '.'"
	Key string `json:"key"`
}

// KafkaTLS turns on TLS to the brokers. Without secretRef the system's root certificates verify the brokers.
// +kubebuilder:validation:XValidation:rule="!has(self.certKey) || has(self.keyKey)",fieldPath=".keyKey",messageExpression="'tls.certKey and tls.keyKey must be set together: a client certificate needs its private key, and certKey is ' + self.certKey + ' while keyKey is not set'"
// +kubebuilder:validation:XValidation:rule="!has(self.keyKey) || has(self.certKey)",fieldPath=".certKey",messageExpression="'tls.certKey and tls.keyKey must be set together: a client certificate needs its private key, and keyKey is ' + self.keyKey + ' while certKey is not set'"
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) || !has(self.caKey)",fieldPath=".caKey",messageExpression="'tls.caKey ' + self.caKey + ' names a key of tls.secretRef, which is not set'"
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) || !has(self.certKey)",fieldPath=".certKey",messageExpression="'tls.certKey ' + self.certKey + ' names a key of tls.secretRef, which is not set'"
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) || !has(self.keyKey)",fieldPath=".keyKey",messageExpression="'tls.keyKey ' + self.keyKey + ' names a key of tls.secretRef, which is not set'"
type KafkaTLS struct {
	// secretRef names a Secret with PEM files: the CA bundle that verifies the brokers (caKey) and, for mutual TLS, the client certificate and key (certKey, keyKey). The files are mounted read-only into the consumer pods.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
	// caKey is the key of the CA bundle in the Secret; "ca.crt" when secretRef is set and caKey is empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CAKey string `json:"caKey,omitempty"`
	// certKey is the key of the client certificate in the Secret, e.g. "tls.crt".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CertKey string `json:"certKey,omitempty"`
	// keyKey is the key of the client certificate's private key in the Secret, e.g. "tls.key".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	KeyKey string `json:"keyKey,omitempty"`
}

// KafkaSASL authenticates the consumer with a username and password from a Secret.
type KafkaSASL struct {
	// mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. PLAIN sends the password as is: use it only together with tls.
	// +required
	Mechanism SASLMechanism `json:"mechanism"`
	// secretRef names the Secret with the username and password.
	// +required
	SecretRef SecretReference `json:"secretRef"`
	// usernameKey is the key of the username in the Secret.
	// +optional
	// +kubebuilder:default=username
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	UsernameKey string `json:"usernameKey,omitempty"`
	// passwordKey is the key of the password in the Secret.
	// +optional
	// +kubebuilder:default=password
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PasswordKey string `json:"passwordKey,omitempty"`
}

// KafkaSource is where the messages come from.
type KafkaSource struct {
	// bootstrapServers are the host:port addresses the consumer first connects to.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	BootstrapServers []BootstrapServer `json:"bootstrapServers"`
	// topic is the topic to consume.
	// +required
	Topic TopicName `json:"topic"`
	// consumerGroup is the Kafka consumer group; "<namespace>.<name>" of the subscription when empty. status.consumerGroup shows the group in effect.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=249
	ConsumerGroup string `json:"consumerGroup,omitempty"`
	// initialOffset is where a group without a committed offset starts: earliest (the oldest retained message) or latest (only messages produced after it joins).
	// +optional
	// +kubebuilder:default=earliest
	InitialOffset InitialOffset `json:"initialOffset,omitempty"`
	// tls turns on TLS to the brokers.
	// +optional
	TLS *KafkaTLS `json:"tls,omitempty"`
	// sasl turns on SASL authentication.
	// +optional
	SASL *KafkaSASL `json:"sasl,omitempty"`
}

// DeadLetter is where messages that cannot be processed go, with headers naming why.
type DeadLetter struct {
	// topic receives the messages that failed permanently (or ran out of retries). It must differ from the source topic.
	// +required
	Topic TopicName `json:"topic"`
	// create makes the consumer create the topic at start when it is missing, with the source topic's partition count and replication factor; a failure to create it is retried like a broker outage. Off by default: the topic is then the cluster's business.
	// +optional
	Create bool `json:"create,omitempty"`
}

// ErrorAction is what the consumer does with a message whose error has a given class.
// +kubebuilder:validation:Enum=deadLetter;retry;skip
type ErrorAction string

// Error actions.
const (
	// ErrorActionDeadLetter writes the message to the dead-letter topic and commits it; the default for permanent classes.
	ErrorActionDeadLetter ErrorAction = "deadLetter"
	// ErrorActionRetry retries the message with the subscription's backoff up to retry.maxAttempts; then it fails with class RetriesExhausted.
	ErrorActionRetry ErrorAction = "retry"
	// ErrorActionSkip commits the message without a dead letter; it is counted, and an event and a log line say so.
	ErrorActionSkip ErrorAction = "skip"
)

// What the API accepts in spec.errorPolicy; the markers on KafkaSubscriptionSpec and ErrorPolicy spell the same, and a test in controllers keeps them in step with the consumer's.
const (
	// ErrorClassPattern is the regular expression an error class name matches, e.g. InvalidPayload or a handler's own OrderLocked.
	ErrorClassPattern = `^[A-Za-z][A-Za-z0-9]{0,62}$`
	// ErrorPolicyMaxClasses is the most classes one policy names.
	ErrorPolicyMaxClasses = 32
	// ErrorClassRetriesExhausted is the class of a message whose transient error outlasted retry.maxAttempts; it cannot be retried again.
	ErrorClassRetriesExhausted = "RetriesExhausted"
)

// ErrorActions lists the actions an error policy may name, as the enum of ErrorAction does.
var ErrorActions = []ErrorAction{ErrorActionDeadLetter, ErrorActionRetry, ErrorActionSkip}

// TransientErrorClasses are the classes the consumer always retries; an error policy cannot name them.
var TransientErrorClasses = []string{"DatabaseUnavailable", "DeadLetterUnavailable", "Unclassified"}

// ErrorPolicy maps an error class to what the consumer does with a message that fails with it: the runtime's permanent classes InvalidPayload, UnexpectedAttributes, ValidationFailed, DatabaseError, HandlerPanic and RetriesExhausted, or a handler's own. A permanent class the policy does not name is dead-lettered.
// +kubebuilder:validation:MaxProperties=32
// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z][A-Za-z0-9]{0,62}$'))",messageExpression="'errorPolicy class names are 1 to 63 letters and digits starting with a letter, e.g. InvalidPayload; not ' + self.filter(k, !k.matches('^[A-Za-z][A-Za-z0-9]{0,62}$'))[0]"
// +kubebuilder:validation:XValidation:rule="!self.exists(k, k in ['DatabaseUnavailable', 'DeadLetterUnavailable', 'Unclassified'])",messageExpression="'errorPolicy cannot name ' + self.filter(k, k in ['DatabaseUnavailable', 'DeadLetterUnavailable', 'Unclassified'])[0] + ': it is transient, and transient classes are always retried'"
// +kubebuilder:validation:XValidation:rule="!('RetriesExhausted' in self) || self['RetriesExhausted'] != 'retry'",fieldPath="['RetriesExhausted']",message="errorPolicy.RetriesExhausted cannot be retry: the message has already run out of retries; use deadLetter or skip"
type ErrorPolicy map[string]ErrorAction

// RetryPolicy bounds the exponential backoff for transient errors such as an unreachable database. While a message is retried its partition is paused and its offset is not committed.
// +kubebuilder:validation:XValidation:rule="!has(self.initialBackoff) || !has(self.maxBackoff) || !self.initialBackoff.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.maxBackoff.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.initialBackoff) <= duration(self.maxBackoff)",fieldPath=".initialBackoff",messageExpression="'retry.initialBackoff ' + self.initialBackoff + ' must not be longer than retry.maxBackoff ' + self.maxBackoff"
type RetryPolicy struct {
	// maxAttempts is how many times a message is tried before it is dead-lettered with class RetriesExhausted; 0 tries until it succeeds.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	MaxAttempts int32 `json:"maxAttempts,omitempty"`
	// initialBackoff is the wait before the first retry, doubled on every further attempt.
	// +optional
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="retry.initialBackoff must be a positive duration such as 500ms, 1s or 1m30s"
	InitialBackoff *metav1.Duration `json:"initialBackoff,omitempty"`
	// maxBackoff caps the wait between two attempts.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="retry.maxBackoff must be a positive duration such as 30s, 1m or 1h"
	MaxBackoff *metav1.Duration `json:"maxBackoff,omitempty"`
}

// Database is where the handler writes.
// +kubebuilder:validation:XValidation:rule="self.driver != 'sqlite' || !has(self.maxConnections) || self.maxConnections == 1",fieldPath=".maxConnections",message="database.maxConnections: SQLite has one connection, which the partitions share"
type Database struct {
	// driver is postgres, mysql or sqlite. A SQLite database lives in one pod, so sqlite allows at most one replica.
	// +required
	Driver DatabaseDriver `json:"driver"`
	// dsnSecretRef names the Secret key that holds the data source name (a connection URL).
	// +required
	DSNSecretRef SecretKeyReference `json:"dsnSecretRef"`
	// migrate runs the handler's schema migrations when a consumer starts.
	// +optional
	Migrate bool `json:"migrate,omitempty"`
	// offsetTable is the table in which the consumers keep the last offset applied per consumer group, topic and partition, written in the same transaction as the handler's rows (this is what makes a batch apply exactly once). The consumers create it at start whatever migrate says; kafkasub_offsets when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z_][A-Za-z0-9_]*$')",message="offsetTable must be a plain SQL identifier: letters, digits and '_', not starting with a digit"
	OffsetTable string `json:"offsetTable,omitempty"`
	// maxConnections caps the connections each consumer pod opens to a PostgreSQL or MySQL database; they stay open while in use. Each partition a pod consumes runs one transaction at a time, so more connections than its partitions buy nothing; replicas times maxConnections must fit the database's connection limit. 10 when unset; SQLite always has one.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxConnections int32 `json:"maxConnections,omitempty"`
}

// SentryReporting sends consumer errors to Sentry.
type SentryReporting struct {
	// dsnSecretRef names the Secret key that holds the Sentry DSN.
	// +required
	DSNSecretRef SecretKeyReference `json:"dsnSecretRef"`
}

// ErrorReporting sends errors to an error tracker besides the log and the metrics.
type ErrorReporting struct {
	// sentry reports every failed message to Sentry.
	// +optional
	Sentry *SentryReporting `json:"sentry,omitempty"`
}

// ConsumerTemplate customises the consumer pods.
type ConsumerTemplate struct {
	// image is the consumer image; the operator's --consumer-image (by default its own image) when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
	// imagePullPolicy is the container's pull policy; the Kubernetes default when empty.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// imagePullSecrets are Secrets used to pull the image.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// resources are the consumer container's requests and limits.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// nodeSelector constrains the pods to nodes with these labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations let the pods run on tainted nodes.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// affinity are the pods' scheduling constraints.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// serviceAccountName is the pods' service account; the namespace's default when empty. The consumer does not use the Kubernetes API, so no token is mounted.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// labels are added to the pods. The operator's app.kubernetes.io/* labels win over labels of the same name.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations are added to the pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// env are extra environment variables of the consumer container. Names starting with KAFKASUB_ are reserved for the operator.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:XValidation:rule="self.all(e, !e.name.startsWith('KAFKASUB_'))",message="template.env cannot set names starting with KAFKASUB_: they are reserved for the operator"
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// KafkaSubscriptionSpec declares one Kafka consumer: what it reads, what it runs, where it writes and where failures go.
// +kubebuilder:validation:XValidation:rule="self.deadLetter.topic != self.kafka.topic",fieldPath=".deadLetter.topic",messageExpression="'deadLetter.topic must differ from kafka.topic, both are ' + self.kafka.topic + ': dead-lettering into the source topic would consume the failed messages again'"
// +kubebuilder:validation:XValidation:rule="self.database.driver != 'sqlite' || !has(self.replicas) || self.replicas <= 1",fieldPath=".replicas",message="database.driver sqlite allows at most one replica: a SQLite database cannot be shared between pods"
// +kubebuilder:validation:XValidation:rule="!has(self.errorPolicy) || !self.errorPolicy.exists(k, self.errorPolicy[k] == 'retry') || (has(self.retry) && has(self.retry.maxAttempts) && self.retry.maxAttempts > 0)",fieldPath=".errorPolicy",messageExpression="'errorPolicy retries ' + self.errorPolicy.filter(k, self.errorPolicy[k] == 'retry')[0] + ' with retry.maxAttempts 0: that would retry a message that can never succeed forever, blocking its partition; set retry.maxAttempts'"
type KafkaSubscriptionSpec struct {
	// handler is the name of the message handler to run, as the consumer image registers it, e.g. inventory.product-updates: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit. A consumer whose image lacks it exits, and Degraded turns True with reason HandlerNotRegistered.
	// +required
	Handler Handler `json:"handler"`
	// kafka is the source: brokers, topic, consumer group, TLS and SASL.
	// +required
	Kafka KafkaSource `json:"kafka"`
	// deadLetter is where messages that cannot be processed go.
	// +required
	DeadLetter DeadLetter `json:"deadLetter"`
	// retry bounds the backoff for transient errors.
	// +optional
	// +kubebuilder:default={}
	Retry RetryPolicy `json:"retry,omitempty"`
	// errorPolicy says per error class what happens to a message that fails with it: deadLetter (the default for permanent classes), retry (with the subscription's backoff up to retry.maxAttempts, which must then be set; then the class is RetriesExhausted) or skip (committed without a dead letter, counted, with an event and a log line). The transient classes DatabaseUnavailable, DeadLetterUnavailable and Unclassified are always retried and cannot be named.
	// +optional
	ErrorPolicy ErrorPolicy `json:"errorPolicy,omitempty"`
	// database is where the handler writes.
	// +required
	Database Database `json:"database"`
	// replicas is the number of consumer pods; more pods than partitions leaves some idle.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`
	// suspend scales the consumer to zero without deleting anything; the group's committed offsets stay, so resuming continues where it stopped.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// errorReporting sends errors to an error tracker.
	// +optional
	ErrorReporting *ErrorReporting `json:"errorReporting,omitempty"`
	// template customises the consumer pods: image, resources, scheduling, labels, env.
	// +optional
	Template ConsumerTemplate `json:"template,omitempty"`
}

// Condition types of a KafkaSubscription.
const (
	// ConditionReady is True when every desired consumer pod is available and runs the current configuration.
	ConditionReady = "Ready"
	// ConditionProgressing is True while the consumer Deployment rolls out a change.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when something needs a person: a missing Secret, a consumer that cannot run (its handler is not in the image, or it keeps crashing), a spec the operator cannot render, a failed apply or a stuck rollout.
	ConditionDegraded = "Degraded"
	// ConditionDatabaseReady is True when every consumer pod that answered at its status endpoint reached its database at its last ping.
	ConditionDatabaseReady = "DatabaseReady"
	// ConditionConsumersJoined is True when every consumer pod that answered at its status endpoint is a member of the consumer group's current session.
	ConditionConsumersJoined = "ConsumersJoined"
)

// Condition reasons of a KafkaSubscription.
const (
	// ReasonDeploymentAvailable (Ready=True, Progressing=False): every desired replica is updated and available.
	ReasonDeploymentAvailable = "DeploymentAvailable"
	// ReasonDeploymentUnavailable (Ready=False): fewer replicas are available than desired.
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
	// ReasonRolloutInProgress (Ready=False, Progressing=True): the Deployment is being created or rolls out a change.
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonRolloutFailed (Degraded=True): the Deployment exceeded its progress deadline.
	ReasonRolloutFailed = "RolloutFailed"
	// ReasonSecretNotFound (Degraded=True): a consumer pod cannot start because a referenced Secret or key does not exist, as its kubelet reports it (CreateContainerConfigError or FailedMount); the message names the Secret and the key. Creating the Secret clears it.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonHandlerNotRegistered (Degraded=True): the consumer image does not register spec.handler; the consumer pods exit at start, and the message is their termination message verbatim, naming the handler and the ones the image registers. Fix spec.handler or spec.template.image.
	ReasonHandlerNotRegistered = "HandlerNotRegistered"
	// ReasonConsumerCrashing (Degraded=True): a consumer container ended with an error and has not become ready since (the kubelet restarts it, in CrashLoopBackOff); the message is its last termination message, or its exit code and reason when it wrote none.
	ReasonConsumerCrashing = "ConsumerCrashing"
	// ReasonSuspended (Ready=False, Progressing=False): spec.suspend scaled the consumer to zero.
	ReasonSuspended = "Suspended"
	// ReasonInvalidSpec (Ready=False, Degraded=True): the spec passed the CRD's validation but cannot be rendered into a consumer configuration; nothing was applied.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonApplyFailed (Degraded=True): the API server refused a child object.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonAsExpected (Degraded=False): nothing needs attention.
	ReasonAsExpected = "AsExpected"
	// ReasonDatabaseAnswers (DatabaseReady=True): every consumer pod that answered reached its database.
	ReasonDatabaseAnswers = "DatabaseAnswers"
	// ReasonDatabaseUnreachable (DatabaseReady=False): a consumer pod reports that its database did not answer its last ping; the message names the pods.
	ReasonDatabaseUnreachable = "DatabaseUnreachable"
	// ReasonJoined (ConsumersJoined=True): every consumer pod that answered is a member of the group.
	ReasonJoined = "Joined"
	// ReasonNotJoined (ConsumersJoined=False): a consumer pod that answered is not a member of the group's current session (it starts, or the group rebalances); the message names the pods.
	ReasonNotJoined = "NotJoined"
	// ReasonNoConsumers (ConsumersJoined=False, DatabaseReady=Unknown): no consumer pod runs, e.g. while suspended.
	ReasonNoConsumers = "NoConsumers"
	// ReasonStatusUnreachable (ConsumersJoined=Unknown, DatabaseReady=Unknown): consumer pods run but none answered at its status endpoint.
	ReasonStatusUnreachable = "StatusUnreachable"
)

// Limits of what the status repeats of the consumers' reports.
const (
	// MaxLagPartitions is the most partitions status.lag.partitions lists: those with the most lag.
	MaxLagPartitions = 32
	// MaxLastErrorMessage is the most of an error's text status.lastError.message holds, in bytes.
	MaxLastErrorMessage = 512
)

// PartitionLag is the lag of one partition.
type PartitionLag struct {
	// partition is the partition number.
	// +required
	Partition int32 `json:"partition"`
	// lag is how many messages of the partition the group has not committed yet, rounded to two significant digits.
	// +required
	Lag int64 `json:"lag"`
}

// ConsumerLag is how far the consumer group is behind the topic.
type ConsumerLag struct {
	// total is the sum of the assigned partitions' lags as the consumer pods report them, rounded to two significant digits (so a lag that moves a little causes no status write).
	// +required
	Total int64 `json:"total"`
	// partitions are the partitions with the most lag, at most 32, most lag first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Partitions []PartitionLag `json:"partitions,omitempty"`
}

// DeadLetterCount is how many messages the consumer pods dead-lettered.
type DeadLetterCount struct {
	// count is the number of messages the running consumer pods wrote to the dead-letter topic since each started; it starts again from zero when a pod is replaced.
	// +required
	Count int64 `json:"count"`
	// lastTime is when the last message was dead-lettered, as far as the operator saw.
	// +optional
	LastTime *metav1.Time `json:"lastTime,omitempty"`
}

// ConsumerError is the last error a consumer pod reported on a message.
type ConsumerError struct {
	// class is the error class, e.g. InvalidPayload, ValidationFailed or DatabaseUnavailable.
	// +required
	// +kubebuilder:validation:MaxLength=128
	Class string `json:"class"`
	// message is the error's text, cut to 512 bytes.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
	// time is when the error occurred.
	// +required
	Time metav1.Time `json:"time"`
}

// KafkaSubscriptionStatus is what the operator observed.
type KafkaSubscriptionStatus struct {
	// observedGeneration is the spec generation the status describes; it is set after a complete reconcile.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions are Ready, Progressing and Degraded, and DatabaseReady and ConsumersJoined from the consumer pods' status endpoints.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// replicas is the number of consumer pods the Deployment runs.
	// +optional
	// +kubebuilder:default=0
	Replicas int32 `json:"replicas"`
	// readyReplicas is the number of consumer pods that are ready.
	// +optional
	// +kubebuilder:default=0
	ReadyReplicas int32 `json:"readyReplicas"`
	// deploymentName is the name of the consumer Deployment.
	// +optional
	DeploymentName string `json:"deploymentName,omitempty"`
	// consumerGroup is the Kafka consumer group in effect.
	// +optional
	ConsumerGroup string `json:"consumerGroup,omitempty"`
	// lag is how far the consumer group is behind, as the consumer pods last reported it.
	// +optional
	Lag *ConsumerLag `json:"lag,omitempty"`
	// deadLetters counts the messages the consumer pods dead-lettered.
	// +optional
	DeadLetters *DeadLetterCount `json:"deadLetters,omitempty"`
	// lastError is the last error a consumer pod reported on a message; it stays after the pod is replaced.
	// +optional
	LastError *ConsumerError `json:"lastError,omitempty"`
}

// KafkaSubscription runs a Kafka consumer: it reads a topic with a consumer group, hands every message to a handler that writes to a database, and sends messages that cannot be processed to a dead-letter topic.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ksub,categories=kafka
// +kubebuilder:printcolumn:name="Topic",type=string,JSONPath=`.spec.kafka.topic`
// +kubebuilder:printcolumn:name="Dead-Letter",type=string,JSONPath=`.spec.deadLetter.topic`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Lag",type=integer,JSONPath=`.status.lag.total`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Ready-Replicas",type=integer,JSONPath=`.status.readyReplicas`,priority=1
// +kubebuilder:printcolumn:name="Dead-Letters",type=integer,JSONPath=`.status.deadLetters.count`,priority=1
// +kubebuilder:printcolumn:name="Handler",type=string,JSONPath=`.spec.handler`,priority=1
// +kubebuilder:printcolumn:name="Group",type=string,JSONPath=`.status.consumerGroup`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 54",message="metadata.name must be at most 54 characters: the consumer Service is named <name>-consumer and a Service name is at most 63"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must start with a lowercase letter and contain only lowercase letters, digits and '-': it names the consumer Service"
type KafkaSubscription struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the consumer.
	// +required
	Spec KafkaSubscriptionSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status KafkaSubscriptionStatus `json:"status,omitempty"`
}

// KafkaSubscriptionList is a list of KafkaSubscriptions.
//
// +kubebuilder:object:root=true
type KafkaSubscriptionList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the list's metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the KafkaSubscriptions.
	Items []KafkaSubscription `json:"items"`
}

// ConsumerGroup returns the Kafka consumer group in effect: spec.kafka.consumerGroup, or "<namespace>.<name>" when that is empty.
func (k *KafkaSubscription) ConsumerGroup() string {
	if k.Spec.Kafka.ConsumerGroup != "" {
		return k.Spec.Kafka.ConsumerGroup
	}
	return k.Namespace + "." + k.Name
}

func init() {
	SchemeBuilder.Register(&KafkaSubscription{}, &KafkaSubscriptionList{})
}
