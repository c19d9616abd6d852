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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// The envtest suite runs the manager, as `kafkasub manager` builds it, against a real
// kube-apiserver and etcd. envtest runs no Kubernetes controllers: no pods start, no
// garbage collector deletes children, so the tests set Deployment status themselves and
// check owner references instead of deletions.

var (
	cfg       *rest.Config
	k8sClient client.Client // uncached: what the API server holds right now
	testEnv   *envtest.Environment
	cancel    context.CancelFunc
	// managerWrites counts the manager's write requests, by namespace.
	managerWrites = &writeCounter{byNamespace: map[string]int{}}
)

// writeCounter counts the requests other than GET of the client it wraps.
type writeCounter struct {
	mu          sync.Mutex
	byNamespace map[string]int
	requests    map[string][]string
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			parts := strings.Split(req.URL.Path, "/")
			for i := 0; i+1 < len(parts); i++ {
				if parts[i] == "namespaces" {
					w.mu.Lock()
					w.byNamespace[parts[i+1]]++
					if w.requests == nil {
						w.requests = map[string][]string{}
					}
					w.requests[parts[i+1]] = append(w.requests[parts[i+1]], req.Method+" "+req.URL.Path)
					w.mu.Unlock()
					break
				}
			}
		}
		return rt.RoundTrip(req)
	})
}

// in returns the number of writes in namespace ns so far and what they were.
func (w *writeCounter) in(ns string) (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byNamespace[ns], append([]string(nil), w.requests[ns]...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const testConsumerImage = "registry.example/kafkasub:test"

func TestControllers(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("the controller suite needs a kube-apiserver and etcd: set KUBEBUILDER_ASSETS=$(hack/envtest.sh)")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(60 * time.Second) // a bound for a loaded machine, not a speed assertion
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme, err := Scheme()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	var ctx context.Context
	ctx, cancel = context.WithCancel(context.Background())
	opts := DefaultManagerOptions()
	opts.MetricsBindAddress = "0"
	opts.HealthProbeBindAddress = "0"
	opts.ConsumerImage = testConsumerImage
	opts.SkipNameValidation = true
	opts.StatusPollInterval = time.Second // the consumer status spec waits for polls
	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.Wrap(managerWrites.wrap)
	mgr, err := NewManager(ctx, mgrCfg, opts)
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
