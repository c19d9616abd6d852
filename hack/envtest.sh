#!/usr/bin/env bash
# Prints a directory usable as KUBEBUILDER_ASSETS (kube-apiserver, etcd, and for the e2e
# control plane kube-controller-manager, kube-scheduler and kubectl) for the Kubernetes
# version that matches k8s.io/api in go.mod.
#
# It first tries setup-envtest (needs the internet). Where that fails it builds the binaries
# from the Go module proxy: a throwaway module that requires k8s.io/kubernetes vX.Y.Z with
# every k8s.io staging module replaced by its v0.Y.Z release, and a second one for etcd.
# The binaries are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/kafkasub/envtest/<version>, so
# fresh clones and CI reuse them; a cache that lacks some (kubectl, added later) gets only
# those built. Safe to run twice (a finished cache is reused) and to interrupt (the build
# happens in a temporary directory and is moved in at the end).
#
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "envtest: $*" >&2; }

api_version=$(cd "$root" && go list -m -f '{{.Version}}' k8s.io/api)  # v0.37.2
minor_patch=${api_version#v0.}                                         # 37.2
k8s_version="1.${minor_patch}"                                         # 1.37.2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kafkasub/envtest/${k8s_version}"
bins=(kube-apiserver etcd kube-controller-manager kube-scheduler kubectl)
SETUP_ENVTEST_VERSION=${SETUP_ENVTEST_VERSION:-v0.25.1}  # pinned, matches controller-runtime

complete() {
  local b
  for b in "${bins[@]}"; do [ -x "$cache/$b" ] || return 1; done
}

if complete; then
  echo "$cache"
  exit 0
fi

mkdir -p "$(dirname "$cache")"
work=$(mktemp -d "$(dirname "$cache")/.build-${k8s_version}.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"

# What the cache has is kept; only the binaries it lacks are built.
for b in "${bins[@]}"; do
  if [ -x "$cache/$b" ]; then cp "$cache/$b" "$work/bin/"; fi
done

# 1. setup-envtest, where the internet is reachable. It provides kube-apiserver, etcd and
#    kubectl; the controller-manager and scheduler are built below either way.
if [ "${KAFKASUB_ENVTEST_NO_DOWNLOAD:-}" = "" ] && [ ! -x "$work/bin/kube-apiserver" ]; then
  log "trying setup-envtest for ${k8s_version}"
  if dir=$(cd "$root" && GOFLAGS=-mod=mod timeout 120 go run sigs.k8s.io/controller-runtime/tools/setup-envtest@"${SETUP_ENVTEST_VERSION}" \
        use "${k8s_version}" --bin-dir "$work/setup" -p path 2>/dev/null) && [ -x "$dir/kube-apiserver" ]; then
    cp "$dir/kube-apiserver" "$dir/etcd" "$work/bin/"
    if [ -x "$dir/kubectl" ]; then cp "$dir/kubectl" "$work/bin/"; fi
    log "setup-envtest provided kube-apiserver, etcd and kubectl"
  else
    log "setup-envtest is not available here (no internet?); building from the Go module proxy"
  fi
fi

# The go.mod of k8s.io/kubernetes: its staging modules and its etcd version.
gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@v${k8s_version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')

# 2. Kubernetes binaries from k8s.io/kubernetes.
need_k8s=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$work/bin/$b" ] || need_k8s+=("$b")
done
if [ ${#need_k8s[@]} -gt 0 ]; then
  mod="$work/k8s"
  mkdir -p "$mod"
  cd "$mod"
  log "resolving k8s.io/kubernetes v${k8s_version} from the Go module proxy"
  go mod init kafkasub.local/envtest-k8s >/dev/null 2>&1
  go mod edit -require "k8s.io/kubernetes@v${k8s_version}"
  # Every staging module that k8s.io/kubernetes requires as v0.0.0 (a ./staging replace).
  while read -r m; do
    go mod edit -replace "${m}=${m}@v0.${minor_patch}"
  done < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
  {
    echo "//go:build tools"
    echo "package tools"
    echo "import ("
    for b in "${need_k8s[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/${b}\""; done
    echo ")"
  } > tools.go
  log "go mod tidy (downloads a few hundred modules the first time)"
  GOFLAGS=-mod=mod go mod tidy >&2
  pkgs=()
  for b in "${need_k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${b}"); done
  log "building ${need_k8s[*]} (about 15 minutes on 2 cores the first time)"
  # Print a heartbeat so a long build does not look hung.
  ( while sleep 60; do log "still building... ($(date +%H:%M:%S))"; done ) &
  beat=$!
  trap 'kill $beat 2>/dev/null || true; rm -rf "$work"' EXIT
  # Stamp the version, as the release build does; a v0.0.0 binary would report no version.
  vpkg=k8s.io/component-base/version
  ldflags="-s -w -X ${vpkg}.gitVersion=v${k8s_version} -X ${vpkg}.gitMajor=1"
  ldflags+=" -X ${vpkg}.gitMinor=${minor_patch%%.*} -X ${vpkg}.gitTreeState=clean"
  ldflags+=" -X ${vpkg}.buildDate=1970-01-01T00:00:00Z"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$work/bin/" "${pkgs[@]}" >&2
  kill $beat 2>/dev/null || true
fi

# 3. etcd, at the version k8s.io/kubernetes requires.
if [ ! -x "$work/bin/etcd" ]; then
  etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$gomod")
  mod="$work/etcd"
  mkdir -p "$mod"
  cd "$mod"
  log "building etcd ${etcd_version}"
  go mod init kafkasub.local/envtest-etcd >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod edit -require "go.etcd.io/etcd/server/v3@${etcd_version}"
  GOFLAGS=-mod=mod go mod tidy >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" . >&2
fi

# Move into place atomically-enough: a partial cache is never left behind.
mkdir -p "$cache.tmp"
cp "$work/bin/"* "$cache.tmp/"
rm -rf "$cache"
mv "$cache.tmp" "$cache"
log "cached in $cache"
echo "$cache"
