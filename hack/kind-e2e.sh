#!/usr/bin/env bash
# End-to-end run of kafkasub on a local kind cluster, the way a user installs it:
#
#   hack/kind-e2e.sh        (make kind-e2e)   create the cluster (or reuse it), build and load
#                                             the image, install the Helm chart, deploy Kafka
#                                             (KRaft) and PostgreSQL from hack/kind/, create
#                                             the topics, migrate and seed the database, apply
#                                             the sample KafkaSubscription, wait for Ready,
#                                             produce the mission's cases from a pod and
#                                             assert the database rows and the dead-letter topic
#   hack/kind-e2e.sh down   (make kind-down)  delete the cluster
#
# Needs Docker (a running engine), kind, kubectl and helm (HELM, default bin/helm from
# `make helm`). The cluster is kept after a run so it can be inspected; `make kind-down`
# removes it. Every manifest applied here is validated by server-side dry-run in the chart
# test suite (charts/chart_test.go), so it is checked even where Docker is missing.
#
# Environment:
#   KIND_CLUSTER     cluster name (kafkasub)
#   KIND_NODE_IMAGE  kindest/node image (kind's default)
#   HELM, KIND, KUBECTL, DOCKER  the tools to use
#   TIMEOUT          how long each wait may take (300s)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=${KIND_CLUSTER:-kafkasub}
context="kind-${cluster}"
# The image built and loaded into the node; hack/kind/*.yaml and producer-pod.json name it.
img=kafkasub:kind-e2e
helm_bin=${HELM:-${root}/bin/helm}
kind_bin=${KIND:-kind}
kubectl_bin=${KUBECTL:-kubectl}
docker_bin=${DOCKER:-docker}
timeout=${TIMEOUT:-300s}

release=kafkasub
operator_ns=kafkasub-system
app_ns=shop
topic=inventory_management_product_updates
dlq_topic=${topic}.dlq
sample="${root}/config/samples/kafkasub_v1alpha1_kafkasubscription.yaml"

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

k() { "$kubectl_bin" --context "$context" "$@"; }

require_tools() {
  command -v "$docker_bin" >/dev/null 2>&1 ||
    die "docker is not installed: kind runs its nodes as Docker containers (https://docs.docker.com/get-docker/)"
  "$docker_bin" info >/dev/null 2>&1 ||
    die "docker is installed but its engine is not reachable (is the Docker daemon running, and may this user use it?)"
  command -v "$kind_bin" >/dev/null 2>&1 ||
    die "kind is not installed: go install sigs.k8s.io/kind@latest (https://kind.sigs.k8s.io)"
  command -v "$kubectl_bin" >/dev/null 2>&1 ||
    die "kubectl is not installed (https://kubernetes.io/docs/tasks/tools/)"
  if [ "$1" = run ]; then
    [ -x "$helm_bin" ] || command -v "$helm_bin" >/dev/null 2>&1 ||
      die "helm not found at ${helm_bin}: run 'make helm' or set HELM"
  fi
}

cluster_exists() { "$kind_bin" get clusters 2>/dev/null | grep -qx "$cluster"; }

down() {
  require_tools down
  if cluster_exists; then
    log "deleting kind cluster ${cluster}"
    "$kind_bin" delete cluster --name "$cluster"
  else
    log "no kind cluster named ${cluster}"
  fi
}

# diagnostics prints what a person needs to see why a step failed.
diagnostics() {
  local rc=$?
  [ "$rc" -eq 0 ] && return
  log "FAILED (exit ${rc}); cluster state follows (the cluster is kept: make kind-down removes it)"
  k get kafkasubscriptions -A -o wide 2>&1 || true
  k describe kafkasubscriptions -n "$app_ns" 2>&1 || true
  k get pods,deployments,statefulsets -A -o wide 2>&1 || true
  k -n "$operator_ns" logs "deployment/${release}" --tail=100 2>&1 || true
  k -n "$app_ns" logs -l app.kubernetes.io/managed-by=kafkasub-operator --tail=100 --prefix 2>&1 || true
  k get events -n "$app_ns" --sort-by=.lastTimestamp 2>&1 | tail -30 || true
}

# psql runs one query in the PostgreSQL pod and prints the unaligned result.
psql() {
  k -n "$app_ns" exec postgres-0 -- psql -U shop -d shop -v ON_ERROR_STOP=1 -tAc "$1"
}

# produce sends one message to the source topic with `kafkasub produce` from a pod in the
# cluster, prints where it landed, and removes the pod. The pod is
# hack/kind/producer-pod.json (the command, and the restricted Pod Security Standard of the
# namespace) with the payload as its only argument. (No -i: an attached stdin would be a
# second payload source.)
produce() {
  local value=$1 phase=""
  k -n "$app_ns" delete pod producer --ignore-not-found --wait >/dev/null
  k -n "$app_ns" run producer --image "$img" --restart=Never \
    --overrides "$(cat "${root}/hack/kind/producer-pod.json")" --override-type=strategic \
    -- "$value" >/dev/null
  local deadline=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$deadline" ]; do
    phase=$(k -n "$app_ns" get pod producer -o jsonpath='{.status.phase}')
    case "$phase" in Succeeded | Failed) break ;; esac
    sleep 2
  done
  k -n "$app_ns" logs producer || true
  [ "$phase" = Succeeded ] || die "producing ${value} failed (pod phase ${phase:-unknown})"
  k -n "$app_ns" delete pod producer --wait >/dev/null
}

# kafka_topics runs kafka-topics.sh in the broker pod.
kafka_topics() {
  k -n kafka exec kafka-0 -- /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 "$@"
}

# dlq_count prints how many messages the dead-letter topic holds.
dlq_count() {
  k -n kafka exec kafka-0 -- /opt/kafka/bin/kafka-get-offsets.sh --bootstrap-server localhost:9092 \
    --topic "$dlq_topic" --time latest | awk -F: '{n += $3} END {print n + 0}'
}

# wait_for runs a command until its output equals want, or fails after TIMEOUT.
wait_for() {
  local what=$1 want=$2 got=""
  shift 2
  local deadline=$((SECONDS + ${timeout%s}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    got=$("$@" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    sleep 3
  done
  die "${what}: want ${want}, got '${got}' after ${timeout}"
}

run() {
  require_tools run
  [ -f "$sample" ] || die "the sample KafkaSubscription ${sample} is missing"
  trap diagnostics EXIT

  if cluster_exists; then
    log "reusing kind cluster ${cluster}"
  else
    log "creating kind cluster ${cluster}"
    "$kind_bin" create cluster --name "$cluster" --config "${root}/hack/kind/cluster.yaml" \
      ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait "$timeout"
  fi

  log "building ${img} and loading it into the cluster"
  "$docker_bin" build -t "$img" "$root"
  "$kind_bin" load docker-image "$img" --name "$cluster"

  log "deploying Kafka (KRaft) and PostgreSQL"
  k apply -f "${root}/hack/kind/kafka.yaml" -f "${root}/hack/kind/postgres.yaml"

  log "installing the Helm chart"
  "$helm_bin" upgrade --install "$release" "${root}/charts/kafkasub" \
    --kube-context "$context" --namespace "$operator_ns" --create-namespace \
    --set image.repository="${img%:*}" --set image.tag="${img##*:}" \
    --set logLevel=debug --wait --timeout "$timeout"
  k -n "$operator_ns" rollout status "deployment/${release}" --timeout "$timeout"

  k -n kafka rollout status statefulset/kafka --timeout "$timeout"
  k -n "$app_ns" rollout status statefulset/postgres --timeout "$timeout"

  log "creating the topics"
  kafka_topics --create --if-not-exists --topic "$topic" --partitions 3 --replication-factor 1
  kafka_topics --create --if-not-exists --topic "$dlq_topic" --partitions 1 --replication-factor 1

  log "migrating and seeding the database"
  k -n "$app_ns" delete job db-setup --ignore-not-found
  k -n "$app_ns" apply -f "${root}/hack/kind/db-setup.yaml"
  k -n "$app_ns" wait --for=condition=complete job/db-setup --timeout "$timeout"

  log "applying the sample KafkaSubscription"
  k -n "$app_ns" apply -f "$sample"
  local name
  name=$(k -n "$app_ns" get -f "$sample" -o jsonpath='{.metadata.name}')
  k -n "$app_ns" wait --for=condition=Ready "kafkasubscription/${name}" --timeout "$timeout"

  local code before
  code=$(psql "SELECT code FROM products ORDER BY id LIMIT 1")
  before=$(psql "SELECT inventory FROM products WHERE code = '${code}'")
  [ -n "$code" ] || die "the seeded database has no products"
  log "first product ${code} has inventory ${before}"

  log "case valid: inventory becomes 25"
  produce "{\"product_code\": \"${code}\", \"inventory_count\": 25}"
  wait_for "inventory of ${code} after the valid message" 25 \
    psql "SELECT inventory FROM products WHERE code = '${code}'"

  log "cases negative count, unknown product, not JSON, unexpected attributes: dead-lettered"
  local dlq_before
  dlq_before=$(dlq_count)
  produce "{\"product_code\": \"${code}\", \"inventory_count\": -1}"
  produce '{"product_code": "NO_SUCH_CODE", "inventory_count": 5}'
  produce 'this is no good'
  produce '{"greeting": "hello"}'
  wait_for "messages on ${dlq_topic}" "$((dlq_before + 4))" dlq_count
  [ "$(psql "SELECT inventory FROM products WHERE code = '${code}'")" = 25 ] ||
    die "a dead-lettered message changed the inventory of ${code}"
  [ "$(psql "SELECT count(*) FROM products WHERE code = 'NO_SUCH_CODE'")" = 0 ] ||
    die "the unknown product was created"

  log "case database down: the message is retried, not lost, and applied when it returns"
  k -n "$app_ns" scale statefulset/postgres --replicas=0
  k -n "$app_ns" wait --for=delete pod/postgres-0 --timeout "$timeout"
  produce "{\"product_code\": \"${code}\", \"inventory_count\": 40}"
  # Give the consumer time to fail and back off while the database is away.
  sleep 20
  k -n "$app_ns" get kafkasubscriptions -o wide
  k -n "$app_ns" scale statefulset/postgres --replicas=1
  k -n "$app_ns" rollout status statefulset/postgres --timeout "$timeout"
  wait_for "inventory of ${code} after the database came back" 40 \
    psql "SELECT inventory FROM products WHERE code = '${code}'"
  [ "$(dlq_count)" = "$((dlq_before + 4))" ] ||
    die "the message sent while the database was down was dead-lettered instead of retried"

  trap - EXIT
  log "kind e2e passed: valid applied, 4 cases dead-lettered, database outage survived (make kind-down removes the cluster)"
}

case "${1:-run}" in
  run) run ;;
  down) down ;;
  *) die "usage: $0 [run|down]" ;;
esac
