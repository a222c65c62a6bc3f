# The KYB Platform API sample service (kyb-sample-api): a non-root, static binary on scratch,
# listening on 8080.
#
# Two ways to build it:
#   - as most users will (BuildKit, network): `docker build .` compiles the binary in the
#     `builder` stage from a Rust image (RUST_IMAGE) and copies it into the `runtime` stage,
#     for amd64 or arm64 (the CI workflow builds both: .github/workflows/deployment.yml);
#   - offline (what kyb-deploy does here): `image.prebuild` builds the static binary on the
#     host and the `prebuilt` stage copies it from the context (`--target prebuilt`). This stage
#     comes first so that a builder without BuildKit stops before the stages that need the
#     network.
#
# Build arguments: VERSION (reported on /status; kyb-deploy passes the version it deploys),
# and for rollback drills, in seconds: FAULT_UNHEALTHY_AFTER (/health fails after that long),
# FAULT_EXIT_AFTER (the process exits after that long), FAULT_READY_AFTER (/ready fails until
# then).

ARG RUST_IMAGE=rust:1-bookworm

FROM scratch AS prebuilt
ARG VERSION=dev
ARG FAULT_UNHEALTHY_AFTER=
ARG FAULT_EXIT_AFTER=
ARG FAULT_READY_AFTER=
ENV APP_VERSION=${VERSION} \
    KYB_SAMPLE_FAULT_UNHEALTHY_AFTER=${FAULT_UNHEALTHY_AFTER} \
    KYB_SAMPLE_FAULT_EXIT_AFTER=${FAULT_EXIT_AFTER} \
    KYB_SAMPLE_FAULT_READY_AFTER=${FAULT_READY_AFTER} \
    PORT=8080
COPY target/x86_64-unknown-linux-gnu/release/kyb-sample-api /kyb-sample-api
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kyb-sample-api"]

# Built natively for each platform asked for (`--platform linux/amd64,linux/arm64`, an arm64
# build runs under emulation where the builder's CPU is amd64).
FROM ${RUST_IMAGE} AS builder
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN case "${TARGETARCH:-amd64}" in \
      amd64) triple=x86_64-unknown-linux-gnu ;; \
      arm64) triple=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported platform architecture: ${TARGETARCH}; use linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
    && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
       --target "$triple" -p kyb-deploy-testkit --bin kyb-sample-api \
    && cp "target/$triple/release/kyb-sample-api" /kyb-sample-api

FROM scratch AS runtime
ARG VERSION=dev
ARG FAULT_UNHEALTHY_AFTER=
ARG FAULT_EXIT_AFTER=
ARG FAULT_READY_AFTER=
ENV APP_VERSION=${VERSION} \
    KYB_SAMPLE_FAULT_UNHEALTHY_AFTER=${FAULT_UNHEALTHY_AFTER} \
    KYB_SAMPLE_FAULT_EXIT_AFTER=${FAULT_EXIT_AFTER} \
    KYB_SAMPLE_FAULT_READY_AFTER=${FAULT_READY_AFTER} \
    PORT=8080
COPY --from=builder /kyb-sample-api /kyb-sample-api
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kyb-sample-api"]
