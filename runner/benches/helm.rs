//! Helm render throughput (issue 7 target): a 30-template chart rendered for 50 accounts,
//! each with its own values (image tag, replicas, config). Printed, not asserted.
//!
//! Run: `cargo bench -p runner --bench helm`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use runner::helm::cli::template_text;
use runner::helm::{Capabilities, ReleaseInfo, load_dir, render, sort_manifests};

/// Writes a chart with 30 templates (10 Deployments, 10 Services, 10 ConfigMaps) sharing
/// `_helpers.tpl` partials, the shape of a Deepdesk service chart family.
fn write_chart(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: bench\nversion: 1.0.0\nappVersion: \"3.1.0\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("values.yaml"),
        "image:\n  repository: europe-docker.pkg.dev/deepdesk/api\n  tag: \"\"\nreplicas: 2\naccount: acme\nconfig:\n  LOG_LEVEL: info\n  TIMEOUT: 30\nresources:\n  requests:\n    cpu: 100m\n    memory: 128Mi\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/_helpers.tpl"),
        r#"{{- define "bench.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end }}
{{- define "bench.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
deepdesk.com/account: {{ .Values.account | quote }}
{{- end }}
"#,
    )
    .unwrap();
    for i in 0..10 {
        std::fs::write(
            dir.join(format!("templates/deployment-{i}.yaml")),
            format!(
                r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ include "bench.fullname" . }}}}-{i}
  labels:
    {{{{- include "bench.labels" . | nindent 4 }}}}
spec:
  replicas: {{{{ .Values.replicas }}}}
  template:
    metadata:
      annotations:
        checksum/config: {{{{ include (print $.Template.BasePath "/configmap-{i}.yaml") . | sha256sum }}}}
    spec:
      containers:
        - name: app-{i}
          image: "{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag | default .Chart.AppVersion }}}}"
          resources:
            {{{{- toYaml .Values.resources | nindent 12 }}}}
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("templates/service-{i}.yaml")),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{{{ include \"bench.fullname\" . }}}}-{i}\n  labels:\n    {{{{- include \"bench.labels\" . | nindent 4 }}}}\nspec:\n  ports:\n    - port: {}\n",
                8000 + i
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("templates/configmap-{i}.yaml")),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ include \"bench.fullname\" . }}}}-{i}\ndata:\n  {{{{- range $k, $v := .Values.config }}}}\n  {{{{ $k }}}}: {{{{ $v | quote }}}}\n  {{{{- end }}}}\n"
            ),
        )
        .unwrap();
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    write_chart(dir.path());
    let chart = load_dir(dir.path()).unwrap();
    assert_eq!(chart.templates.len(), 31);
    let caps = Capabilities::default();
    let accounts: Vec<(ReleaseInfo, serde_json::Value)> = (0..50)
        .map(|i| {
            (
                ReleaseInfo { name: format!("account-{i}"), namespace: format!("acc-{i}"), revision: 1, is_install: true },
                serde_json::json!({"account": format!("acc{i}"), "image": {"tag": format!("1.{i}.0")}, "replicas": 1 + i % 4, "config": {"ACCOUNT_ID": i}}),
            )
        })
        .collect();
    for round in 0..3 {
        let start = Instant::now();
        let mut docs = 0;
        for (rel, values) in &accounts {
            let files = render(&chart, values, rel, &caps, 0, Default::default()).unwrap();
            let sorted = sort_manifests(&files, chart.name()).unwrap();
            docs += black_box(sorted.manifests.len());
        }
        let took = start.elapsed();
        println!(
            "helm render+sort: 30 templates x 50 accounts = {docs} manifests in {:.1} ms ({:.2} ms/account) [round {round}]",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3 / 50.0
        );
    }
    // What `flux-runner template` prints for each account (render, sort, Helm v4 layout).
    for round in 0..3 {
        let start = Instant::now();
        let mut bytes = 0;
        for (rel, values) in &accounts {
            let files = render(&chart, values, rel, &caps, 0, Default::default()).unwrap();
            bytes += black_box(template_text(&files, chart.name()).unwrap().len());
        }
        let took = start.elapsed();
        println!(
            "helm template text: 30 templates x 50 accounts = {} KiB in {:.1} ms ({:.2} ms/account) [round {round}]",
            bytes / 1024,
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3 / 50.0
        );
    }
}
