// Package e2e is the end-to-end test of kafkasub on a local control plane that needs no
// Docker: the envtest kube-apiserver and etcd, kube-controller-manager and kube-scheduler
// built from the same Kubernetes release, and kwok giving the Pods a fake node and a
// Running/Ready status. The operator runs as the real `kafkasub manager` binary; for each
// Pod of a consumer Deployment the test starts the real `kafkasub consumer` binary with
// that Pod's command, args, env and mounted files.
//
// The tests run when KUBEBUILDER_ASSETS has kube-apiserver, etcd, kube-controller-manager
// and kube-scheduler (hack/envtest.sh prints one) and a kwok binary is found
// (KAFKASUB_E2E_KWOK, default bin/kwok; make kwok installs it), so `make test` runs them;
// otherwise they skip saying what is missing. KAFKASUB_E2E=1 (set by `make e2e`) makes a
// missing prerequisite a failure, KAFKASUB_E2E=0 turns them off. Kafka and the database
// follow KAFKASUB_TEST_KAFKA_BROKERS and KAFKASUB_TEST_POSTGRES_DSN like the other tests.
// With a kubectl in KUBEBUILDER_ASSETS the log shows `kubectl get ksub -o wide` and
// `kubectl describe ksub` at a few moments.
package e2e
