// Package e2e is the end-to-end test of kafkasub on a local control plane that needs no
// Docker: the envtest kube-apiserver and etcd, kube-controller-manager and kube-scheduler
// built from the same Kubernetes release, and kwok giving the Pods a fake node and a
// Running/Ready status. The operator runs as the real `kafkasub manager` binary; for each
// Pod of a consumer Deployment the test starts the real `kafkasub consumer` binary with
// that Pod's command, args, env and mounted files.
//
// The tests skip unless KAFKASUB_E2E=1 (`make e2e` sets it). Once enabled they need
// KUBEBUILDER_ASSETS with kube-apiserver, etcd, kube-controller-manager and kube-scheduler
// (hack/envtest.sh prints one) and a kwok binary (KAFKASUB_E2E_KWOK, default bin/kwok).
package e2e
