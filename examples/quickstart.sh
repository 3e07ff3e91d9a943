#!/usr/bin/env bash
# Quickstart: builds everything, starts the Kubernetes API test server, installs the Flux CRDs,
# runs `terraform apply` of examples/deepdesk-terraform (one flux_kustomization per account),
# shows what landed in the cluster, destroys it again and cleans up. Leaves no process behind.
#
# The whole push-to-deploy loop (registry, config repo, runner, Slack) joins this script as the
# runner's issues land.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n==> %s\n' "$*"; }

step "Building the provider, the runner and the test API server"
(cd "$root" && cargo build --quiet --bins)
bin="$root/target/debug"

step "Starting the Kubernetes API test server"
"$bin/kube-test-apiserver" --listen 127.0.0.1:0 --kubeconfig "$work/kubeconfig" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/server.out" ] && break; sleep 0.1; done
echo "API server at $(head -1 "$work/server.out")"
export KUBECONFIG="$work/kubeconfig"

step "Installing the Flux CRDs (flux-runner crds | kubectl apply --server-side)"
"$bin/flux-runner" crds | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=30s >/dev/null
kubectl get crd -o name | sed 's/^/  /'
kubectl create namespace flux-system >/dev/null

step "terraform apply of examples/deepdesk-terraform (dev_overrides, no init)"
cat >"$work/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/deepdesk/flux" = "$bin"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1
cp "$root/examples/deepdesk-terraform/main.tf" "$work/"
cd "$work"
tf() { terraform "$@" -no-color -compact-warnings -var "kubeconfig=$work/kubeconfig" 2>&1 | grep -v -E '^(│|╷|╵)|Provider development overrides|The following provider|- deepdesk/flux in|skip terraform init|the latest published releases|^$' || true; }
tf apply -auto-approve

step "What the cluster holds now"
kubectl get kustomizations.kustomize.toolkit.fluxcd.io -n flux-system

step "A second plan is empty"
terraform plan -detailed-exitcode -no-color -var "kubeconfig=$work/kubeconfig" >/dev/null 2>&1 && echo "no changes"

step "terraform destroy"
tf destroy -auto-approve
echo "remaining Kustomizations: $(kubectl get kustomizations.kustomize.toolkit.fluxcd.io -A -o name | wc -l)"
