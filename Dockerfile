# syntax=docker/dockerfile:1
#
# The flux-runner image: what `flux_installation` deploys when `runner.image` is not set.
#
# Published as ghcr.io/deepdesk/flux-runner:<workspace version>, the `version` of
# `[workspace.package]` in Cargo.toml. The provider and the runner both take that version, and the
# provider's default image (provider/src/resources/installation.rs, `default_image()`) is
# `ghcr.io/deepdesk/flux-runner:<provider version>`, so a provider release installs the runner
# built from the same commit. From the repository root:
#
#   VERSION=$(cargo metadata --format-version 1 --no-deps | jq -r '.packages[] | select(.name == "runner") | .version')
#   docker build -t ghcr.io/deepdesk/flux-runner:$VERSION .
#   docker push ghcr.io/deepdesk/flux-runner:$VERSION

# The workspace's rust-version (Cargo.toml). Debian 12, as the runtime image below, so the binary
# links against the same glibc.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# libgit2, libssh2 and OpenSSL (vendored) and aws-lc are built from source with the C toolchain,
# make and perl the rust image already has. The target directory and the registry are cache
# mounts, so the binary is copied out of the cache before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p runner --bin flux-runner \
    && install -D -m 0755 target/release/flux-runner /out/flux-runner

# glibc, libgcc, CA certificates, /tmp (the runner's cache directory is /tmp/flux-runner), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="flux-runner" \
      org.opencontainers.image.description="Flux-compatible GitOps controller: image reflection and automation, kustomize, Helm, receiver and alerts in one process." \
      org.opencontainers.image.source="https://github.com/deepdesk/terraform-provider-flux" \
      org.opencontainers.image.licenses="Apache-2.0"
# Vendored OpenSSL (libgit2's HTTPS) looks for CA certificates here.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Helm renders run on blocking threads; without a cap glibc keeps a malloc arena per thread
# (about 5 MiB of idle RSS with 250 HelmReleases, BENCHMARKS.md P7).
ENV MALLOC_ARENA_MAX=2
COPY --from=builder /out/flux-runner /usr/local/bin/flux-runner
# distroless's nonroot user, numeric so that the kubelet can enforce runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/flux-runner"]
