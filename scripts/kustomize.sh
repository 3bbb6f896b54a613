#!/usr/bin/env bash
# Prints the path of a kustomize binary: the one on PATH, or one built once from the Go module proxy
# into .local/bin (the machine has Go; no prebuilt binary is downloaded).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=v5.5.0
if command -v kustomize >/dev/null 2>&1; then command -v kustomize; exit 0; fi
bin="$root/.local/bin/kustomize"
if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || { echo "kustomize needs Go to build (apt-get install golang)" >&2; exit 1; }
  echo "building kustomize $version with go install (once)" >&2
  GOBIN="$root/.local/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$version" >&2
fi
echo "$bin"
