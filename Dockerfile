# The KYB Platform API sample service (kyb-sample-api): a non-root, static binary on scratch,
# listening on 8080.
#
# Two ways to build it:
#   - as most users will (BuildKit, network): `docker build .` compiles the binary in the
#     `builder` stage from a Rust image (RUST_IMAGE) and copies it into the `runtime` stage;
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

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
    --target x86_64-unknown-linux-gnu -p kyb-deploy-testkit --bin kyb-sample-api

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
COPY --from=builder /src/target/x86_64-unknown-linux-gnu/release/kyb-sample-api /kyb-sample-api
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kyb-sample-api"]
