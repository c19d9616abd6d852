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

// Package controllers is the kafkasub operator: the KafkaSubscription reconciler and the
// `kafkasub manager` subcommand (NewManagerCommand).
//
// For a KafkaSubscription <name> in namespace <ns> the operator server-side applies, under
// the field manager FieldManager and with a controller owner reference to the
// subscription, four children named ChildName(<name>) = "<name>-consumer" in <ns>:
//
//   - a ConfigMap whose key consumer.ConfigFileName is the consumer.Config (ConsumerConfig);
//   - a Deployment running `/kafkasub consumer --config ConfigFile`, the ConfigMap mounted at
//     ConfigDir, the TLS Secret at TLSDir (files TLSCAFile, TLSCertFile, TLSKeyFile), an
//     emptyDir at TmpDir, the secrets as the consumer.Env* variables (secretKeyRef), probes
//     on the port HealthPortName and the port MetricsPortName, the pod-template annotation
//     AnnotationConfigHash, and the restricted Pod Security Standard;
//   - a Service exposing the port MetricsPortName;
//   - a PodDisruptionBudget (maxUnavailable 1) while more than one replica runs.
//
// Every child and every consumer pod carries StandardLabels; the Deployment selects
// SelectorLabels. BuildDesired builds all of them from the subscription alone, and
// ComputeStatus turns what a reconcile observed into the status, both pure functions. A
// ConsumerPoller asks the running consumer pods for their status (consumer.StatusPath on
// the port HealthPortName) in the background; SummarizeConsumers turns the answers into
// status.lag, status.deadLetters, status.lastError and the conditions DatabaseReady and
// ConsumersJoined.
package controllers
