#!/usr/bin/env bash
# Quickstart (README command 1): the whole push-to-deploy loop on this machine, nothing from the internet.
#
# Builds everything, then starts local stand-ins for what Deepdesk runs in GCP:
#   - kube-test-apiserver (the Kubernetes API; it simulates workload status, runs no pods),
#   - docker-registry (eu.gcr.io), pushed to through its HTTP API,
#   - a git smart-HTTP server (git http-backend) holding examples/config-repo as deepdesk-config and
#     examples/helmcharts as deepdesk-helmcharts, as bare repositories,
#   - a Slack sink (records every incoming-webhook POST),
# runs `terraform apply` of examples/deepdesk-gcp and examples/deepdesk-terraform pointed at them,
# starts `flux-runner run` as a local process (in a cluster it is the Deployment flux_installation
# creates), pushes a new image main-<sha>-<unix ts> of the backend, announces the push to the
# Receiver (as CI does), and follows it: the policy's new tag, the commit in deepdesk-config, the
# upgraded Helm releases, the Slack message. The last line is `push-to-deploy: <seconds> s`
# (registry push → the last upgraded release recorded as deployed).
#
# Every wait has a timeout and fails with what it waited for; every process started here is
# stopped on exit, and the working directory is removed (QUICKSTART_KEEP=1 keeps it, for the logs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t flux-quickstart.XXXXXX)"
pids=()
t_start=$(date +%s.%N)

cleanup() {
  local code=$?
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$code" -ne 0 ] && [ -f "$work/runner.log" ]; then
    echo "--- last lines of the runner's log ($work/runner.log) ---" >&2
    tail -n 25 "$work/runner.log" >&2 || true
  fi
  if [ "${QUICKSTART_KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n=0
total=8
step() { n=$((n + 1)); printf '\n[%d/%d] %s\n' "$n" "$total" "$*"; }
info() { printf '      %s\n' "$*"; }
fail() { printf '\nquickstart: FAILED at step %d: %s\n' "$n" "$*" >&2; exit 1; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(date +%s.%N)"; }

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds (its stdout is kept in $got).
got=""
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + limit))
  while true; do
    if got="$("$@" 2>"$work/wait.err")"; then return 0; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "timed out after ${limit}s waiting for $what${got:+ (last: $got)}$( [ -s "$work/wait.err" ] && printf ' (%s)' "$(tail -c 300 "$work/wait.err")")"
    fi
    sleep 0.1
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for tool in cargo terraform kubectl git python3 curl sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is required on PATH (.ci/run lists what a fresh machine needs)"
done
[ -x /usr/bin/docker-registry ] || fail "/usr/bin/docker-registry missing: apt-get install -y docker-registry"

# ---------------------------------------------------------------------------------------------
step "Building the provider, flux-runner and kube-test-apiserver (cargo build --workspace --bins)"
(cd "$root" && cargo build --quiet --workspace --bins) || fail "cargo build failed"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
for b in flux-runner kube-test-apiserver terraform-provider-flux; do
  [ -x "$bin/$b" ] || fail "$bin/$b was not built"
done
info "built in $(since "$t_start") s"

# ---------------------------------------------------------------------------------------------
step "Starting the Kubernetes API test server"
# The runner authenticates as the ServiceAccount flux_installation creates, so the audit log
# ($work/audit.log) shows what its RBAC must allow.
runner_user="system:serviceaccount:flux-system:flux-runner"
# TLS: kubectl sends bearer tokens only over https.
"$bin/kube-test-apiserver" --listen 127.0.0.1:0 --kubeconfig "$work/kubeconfig" --tls \
  --token quickstart-admin --user "runner-token=$runner_user" --audit-log "$work/audit.log" --sim-delay-ms 50 \
  >"$work/apiserver.out" 2>"$work/apiserver.err" &
pids+=($!)
wait_for 20 "the API server's URL" bash -c "head -1 '$work/apiserver.out' | grep ."
api_url="$got"
export KUBECONFIG="$work/kubeconfig"
wait_for 20 "the API server's kubeconfig" test -s "$work/kubeconfig"
sed 's/token: quickstart-admin/token: runner-token/' "$work/kubeconfig" >"$work/runner.kubeconfig"
info "API server at $api_url"

# ---------------------------------------------------------------------------------------------
step "Starting a local registry, the git server (deepdesk-config, deepdesk-helmcharts) and the Slack sink"
reg_port=$(free_port)
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<CFG
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$reg_port
CFG
/usr/bin/docker-registry serve "$work/registry/config.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
registry="127.0.0.1:$reg_port"
wait_for 20 "the registry at $registry" curl -fsS "http://$registry/v2/"
info "registry at $registry"

cat >"$work/services.py" <<'PY'
# The quickstart's git smart-HTTP server (git http-backend as CGI, pushes allowed) and Slack sink
# (every POST appended to a JSON-lines file, answered 200 "ok"). Ports go to stdout, one per line.
import http.server, json, os, re, subprocess, sys, threading

git_root, slack_log = sys.argv[1], sys.argv[2]
lock = threading.Lock()

class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

class Git(Quiet):
    def do_GET(self):
        self.cgi()

    def do_POST(self):
        self.cgi()

    def cgi(self):
        path, _, query = self.path.partition("?")
        data = self.body()
        env = dict(os.environ, GIT_PROJECT_ROOT=git_root, GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(data)), REMOTE_USER="quickstart", REMOTE_ADDR="127.0.0.1")
        for h, v in (("HTTP_CONTENT_ENCODING", "Content-Encoding"), ("HTTP_GIT_PROTOCOL", "Git-Protocol")):
            if self.headers.get(v):
                env[h] = self.headers[v]
        out = subprocess.run(["git", "http-backend"], input=data, env=env, capture_output=True).stdout
        head, _, rest = re.split(rb"(\r?\n\r?\n)", out, maxsplit=1) if re.search(rb"\r?\n\r?\n", out) else (out, b"", b"")
        code, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                code = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)

class Slack(Quiet):
    def do_POST(self):
        data = self.body()
        with lock, open(slack_log, "a") as f:
            f.write(json.dumps({"path": self.path, "body": data.decode("utf-8", "replace")}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (Git, Slack)]
for s in servers:
    print(s.server_address[1], flush=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
PY
mkdir -p "$work/git"
: >"$work/slack.jsonl"
python3 "$work/services.py" "$work/git" "$work/slack.jsonl" >"$work/services.out" 2>"$work/services.err" &
pids+=($!)
wait_for 20 "the git server and Slack sink ports" bash -c "[ \$(wc -l <'$work/services.out') -ge 2 ] && cat '$work/services.out'"
git_port=$(sed -n 1p "$work/services.out")
slack_port=$(sed -n 2p "$work/services.out")
git_url="http://127.0.0.1:$git_port"
slack_url="http://127.0.0.1:$slack_port"

seed() { # seed NAME DIR: a bare repository NAME.git whose main branch holds DIR's files
  local name=$1 dir=$2 tree="$work/seed-$1"
  cp -r "$dir" "$tree"
  # deepdesk-config names Deepdesk's registry; here the images live in the local one.
  [ "$name" = deepdesk-config ] && grep -rl 'eu.gcr.io/deepdesk-cloud' "$tree" | xargs -r sed -i "s#eu.gcr.io/deepdesk-cloud#$registry#g"
  git -C "$tree" init -q -b main
  git -C "$tree" -c user.name=platform -c user.email=platform@deepdesk.com add -A
  git -C "$tree" -c user.name=platform -c user.email=platform@deepdesk.com commit -q -m "$name: initial import"
  git init -q --bare -b main "$work/git/$name.git"
  git -C "$work/git/$name.git" config http.receivepack true
  git -C "$tree" push -q "$git_url/$name.git" main
}
seed deepdesk-config "$root/examples/config-repo" || fail "seeding deepdesk-config through $git_url"
seed deepdesk-helmcharts "$root/examples/helmcharts" || fail "seeding deepdesk-helmcharts through $git_url"
info "git server at $git_url: deepdesk-config.git, deepdesk-helmcharts.git"
info "Slack sink at $slack_url"

# Images as in deepdesk-config, so the first policy pick changes nothing.
declare -A manifest
prepare_image() { # uploads a config and a layer blob of image $1, sets manifest[$1]
  local repo=$1 cfg layer
  cfg='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
  layer="quickstart layer of $repo"
  for data in "$cfg" "$layer"; do
    local digest="sha256:$(printf %s "$data" | sha256sum | cut -d' ' -f1)" loc
    loc=$(curl -fsS -X POST -D - -o /dev/null "http://$registry/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    [ -n "$loc" ] || return 1
    case "$loc" in /*) loc="http://$registry$loc" ;; esac
    case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$data" "$loc" >/dev/null || return 1
  done
  manifest[$repo]=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"sha256:%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"sha256:%s"}]}' \
    "${#cfg}" "$(printf %s "$cfg" | sha256sum | cut -d' ' -f1)" "${#layer}" "$(printf %s "$layer" | sha256sum | cut -d' ' -f1)")
}
push_tag() { # push_tag IMAGE TAG: PUT /v2/IMAGE/manifests/TAG
  curl -fsS -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "${manifest[$1]}" "http://$registry/v2/$1/manifests/$2" >/dev/null
}
for svc in backend engine; do
  prepare_image "$svc" || fail "uploading the blobs of $svc to $registry"
  tag=$(sed -n 's/.*tag: \(main-[^ ]*\) # {"\$imagepolicy".*/\1/p' "$root/examples/config-repo/k8s/flux/staging/acme/$svc.yaml")
  push_tag "$svc" "$tag" || fail "pushing $svc:$tag"
  info "pushed $registry/$svc:$tag"
done

# ---------------------------------------------------------------------------------------------
step "Account namespaces and their Secrets (created outside git, as in Deepdesk)"
for account in acme globex; do
  kubectl create namespace "$account" >/dev/null
  kubectl -n "$account" create secret generic slack-webhook --from-literal=address="$slack_url/$account" >/dev/null
  for s in backend-database backend-django engine-credentials; do
    kubectl -n "$account" create secret generic "$s" --from-literal=placeholder=quickstart >/dev/null
  done
  info "namespace $account: slack-webhook → $slack_url/$account"
done
# The Prometheus operator's CRD, for the PodMonitor of deepdesk-gcp.
kubectl apply --server-side -f - >/dev/null <<'CRD' || fail "applying the PodMonitor CRD"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: podmonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: PodMonitor, listKind: PodMonitorList, plural: podmonitors, singular: podmonitor}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
CRD

# ---------------------------------------------------------------------------------------------
step "terraform apply of examples/deepdesk-gcp and examples/deepdesk-terraform"
cat >"$work/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/deepdesk/flux" = "$bin"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1
tf_apply() { # tf_apply EXAMPLE VAR=VALUE...
  local ex=$1
  shift
  mkdir -p "$work/$ex"
  cp "$root/examples/$ex/main.tf" "$work/$ex/"
  local args=(-var "kubeconfig=$work/kubeconfig")
  for v in "$@"; do args+=(-var "$v"); done
  if ! (cd "$work/$ex" && timeout 300 terraform apply -auto-approve -no-color -compact-warnings "${args[@]}" >"$work/$ex.apply.log" 2>&1); then
    tail -n 30 "$work/$ex.apply.log" >&2
    fail "terraform apply of examples/$ex (log above)"
  fi
  grep -E '^Apply complete' "$work/$ex.apply.log" | sed 's/^/      /'
}
tf_apply deepdesk-gcp "helmcharts_url=$git_url/deepdesk-helmcharts.git" "config_url=$git_url/deepdesk-config.git" \
  "registry=$registry" gcp_workload_identity=false
tf_apply deepdesk-terraform "slack_webhook_url=$slack_url/deployments"
hook_path=$(cd "$work/deepdesk-gcp" && terraform output -raw -no-color image_webhook_path) || fail "reading the output image_webhook_path"
info "image push webhook: $hook_path"

# ---------------------------------------------------------------------------------------------
step "Starting flux-runner run (a local process, as the ServiceAccount flux-runner)"
webhook_port=$(free_port)
metrics_port=$(free_port)
"$bin/flux-runner" run --kubeconfig "$work/runner.kubeconfig" --cache-dir "$work/cache" \
  --webhook-addr "127.0.0.1:$webhook_port" --metrics-addr "127.0.0.1:$metrics_port" \
  --log-level info 2>"$work/runner.log" >/dev/null &
pids+=($!)
runner_pid=$!
wait_for 30 "the runner's /readyz" curl -fsS "http://127.0.0.1:$metrics_port/readyz"
info "runner pid $runner_pid: webhooks on 127.0.0.1:$webhook_port, metrics on 127.0.0.1:$metrics_port"

# ---------------------------------------------------------------------------------------------
step "First sync: sources fetched, accounts applied, Helm releases installed"
hr_ready() { # all 4 HelmReleases Ready=True
  local s
  s=$(kubectl get helmreleases.helm.toolkit.fluxcd.io -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
  echo "$s"
  [ "$(grep -c '=True$' <<<"$s")" -eq 4 ]
}
wait_for 180 "the 4 HelmReleases (acme, globex × backend, engine) to be Ready" hr_ready
sed 's/^/      HelmRelease /; s/=True$/ Ready/' <<<"$got"
deployed_version() { # deployed_version NS RELEASE: the version label of its deployed release Secret
  kubectl -n "$1" get secrets -l "owner=helm,name=$2,status=deployed" -o jsonpath='{.items[*].metadata.labels.version}'
}
declare -A before
for account in acme globex; do
  before[$account]=$(deployed_version "$account" backend)
  [ -n "${before[$account]}" ] || fail "no deployed Helm release of $account/backend"
  info "Helm release $account/backend: revision ${before[$account]} deployed"
done
policy_tag() { kubectl -n flux-system get imagepolicies.image.toolkit.fluxcd.io backend-staging -o jsonpath='{.status.latestRef.tag}'; }
wait_for 60 "ImagePolicy backend-staging to pick a tag" bash -c "t=\$(kubectl -n flux-system get imagepolicies.image.toolkit.fluxcd.io backend-staging -o jsonpath='{.status.latestRef.tag}'); [ -n \"\$t\" ] && echo \$t"
info "ImagePolicy flux-system/backend-staging: $got"
config_head=$(git --git-dir "$work/git/deepdesk-config.git" rev-parse main)
slack_before=$(wc -l <"$work/slack.jsonl")

# ---------------------------------------------------------------------------------------------
sha=$(head -c 20 /dev/urandom | sha1sum | cut -c1-7)
new_tag="main-$sha-$(date +%s)"
step "Pushing $registry/backend:$new_tag and announcing it to the Receiver"
t0=$(date +%s.%N)
push_tag backend "$new_tag" || fail "pushing backend:$new_tag"
body=$(printf '{"events":[{"action":"push","target":{"repository":"backend","tag":"%s"},"request":{"host":"%s"}}]}' "$new_tag" "$registry")
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data "$body" "http://127.0.0.1:$webhook_port$hook_path") || fail "calling the webhook"
[ "$code" = 200 ] || fail "the webhook answered HTTP $code"
info "pushed and announced (webhook HTTP $code)"

wait_for 30 "ImagePolicy backend-staging to pick $new_tag" bash -c "[ \"\$(kubectl -n flux-system get imagepolicies.image.toolkit.fluxcd.io backend-staging -o jsonpath='{.status.latestRef.tag}')\" = '$new_tag' ]"
info "[+$(since "$t0") s] ImagePolicy flux-system/backend-staging → $new_tag"
wait_for 30 "a commit in deepdesk-config setting $new_tag" bash -c "h=\$(git --git-dir '$work/git/deepdesk-config.git' rev-parse main); [ \"\$h\" != '$config_head' ] && git --git-dir '$work/git/deepdesk-config.git' grep -q '$new_tag' main -- k8s && git --git-dir '$work/git/deepdesk-config.git' log -1 --format='%h %an: %s' main"
info "[+$(since "$t0") s] deepdesk-config commit $got"
git --git-dir "$work/git/deepdesk-config.git" diff --stat "$config_head" main | sed 's/^/          /'
for account in acme globex; do
  wait_for 60 "a new Helm release revision of $account/backend" bash -c "v=\$(kubectl -n $account get secrets -l owner=helm,name=backend,status=deployed -o jsonpath='{.items[*].metadata.labels.version}'); [ -n \"\$v\" ] && [ \"\$v\" -gt ${before[$account]} ] && echo \$v"
  image=$(kubectl -n "$account" get deployment backend -o jsonpath='{.spec.template.spec.containers[0].image}')
  [[ "$image" == *":$new_tag" ]] || fail "Deployment $account/backend runs $image, not $new_tag"
  info "[+$(since "$t0") s] Helm release $account/backend: revision ${before[$account]} → $got deployed ($image)"
done
slack_new() { tail -n +"$((slack_before + 1))" "$work/slack.jsonl" | python3 -c '
import json, sys
found = []
for line in sys.stdin:
    p = json.loads(line)
    try:
        b = json.loads(p["body"])
    except ValueError:
        continue
    for a in b.get("attachments", []):
        t = a.get("text", "")
        if "upgrade" in t.lower() and "/backend." in t:
            found.append("%s %s (%s, webhook %s): %s" % (b.get("channel", ""), a.get("color"), b.get("username"), p["path"], t))
print("\n".join(found))
sys.exit(0 if found else 1)'; }
wait_for 30 "a Slack message about the backend upgrade" slack_new
info "[+$(since "$t0") s] Slack:"
sed 's/^/          /' <<<"$got"

# The figure: from the registry push to the newest upgraded release's deployed time (Helm's own
# record, info.last_deployed, decoded from the release Secret).
last=$(for account in acme globex; do
  v=$(deployed_version "$account" backend)
  kubectl -n "$account" get secret "sh.helm.release.v1.backend.v$v" -o jsonpath='{.data.release}'
  echo
done | python3 -c '
import base64, datetime, gzip, json, re, sys
latest = 0.0
for line in sys.stdin:
    if not line.strip():
        continue
    raw = base64.b64decode(base64.b64decode(line.strip()))
    rel = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    t = rel["info"]["last_deployed"]
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", t)
    frac = float("0" + (m.group(2) or ""))
    base = datetime.datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    latest = max(latest, base.timestamp() + frac)
print(latest)') || fail "reading the releases' deployed times"
echo
echo "quickstart: all steps passed in $(since "$t_start") s (logs were in $work)."
python3 -c "import sys; print(f'push-to-deploy: {float(sys.argv[1]) - float(sys.argv[2]):.2f} s')" "$last" "$t0"
