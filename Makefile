# kafkasub — a Kubernetes operator that runs Kafka consumers from a KafkaSubscription.

# Image used by docker-build, deploy and the chart.
IMG ?= kafkasub:dev

# Tool versions. Every tool is pinned and installed into ./bin with go install.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
HELM_VERSION ?= v4.3.1
KWOK_VERSION ?= v0.8.0

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
HELM ?= $(LOCALBIN)/helm
KWOK ?= $(LOCALBIN)/kwok

GO_TEST_FLAGS ?= -timeout 40m -count=1
export GOTOOLCHAIN ?= local
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests from the kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=kafkasub-manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: envtest
envtest: ## Print a KUBEBUILDER_ASSETS directory (builds kube-apiserver and etcd offline once, then cached).
	@hack/envtest.sh

.PHONY: test
test: manifests generate fmt vet ## Run every test: unit, consumer integration, envtest, chart (real servers where given).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go test $(GO_TEST_FLAGS) ./...

.PHONY: e2e
e2e: kwok ## Run the end-to-end test: operator and consumers on a local control plane (envtest apiserver, controller manager, scheduler, kwok).
	KAFKASUB_E2E=1 KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" KAFKASUB_E2E_KWOK=$(KWOK) \
		go test -count=1 -v -timeout 30m ./hack/e2e/

.PHONY: bench
bench: ## Run the benchmarks (throughput reported as msgs/s).
	go test -run '^$$' -bench . -benchmem -benchtime 3s ./consumer/...

##@ Build

.PHONY: build
build: ## Build the kafkasub binary into bin/.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/kafkasub .

.PHONY: run
run: manifests generate fmt vet ## Run the operator against the current kubeconfig.
	go run . manager

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: kwok
kwok: $(KWOK) ## Install kwok (fake nodes and pod status for the e2e control plane) into bin/.
$(KWOK): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
