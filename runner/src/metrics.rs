//! Prometheus metrics of `flux-runner run` (issue 8). Being written.
