# syntax=docker/dockerfile:1.7
# One image recipe for the five services and our collector. Build them all,
# for linux/amd64 and linux/arm64, with the bake file:
#   docker buildx bake                       (make images; make push to ECR)
# or one by hand:
#   docker build --build-arg MODULE=services/webapi -t webapi:dev .
#
# Base images are pinned by digest (a tag can move under you). To refresh:
#   docker buildx imagetools inspect golang:1.26.6-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot

# The builder runs on the build machine's platform and cross-compiles for the
# target one (no emulation): CGO is off, so Go needs nothing but GOOS/GOARCH.
FROM --platform=$BUILDPLATFORM golang:1.26.6-bookworm@sha256:116d58cbd88c1297624acc6e967a060012422bacf9930927e23fb719189c6f36 AS build
# MODULE: services/<name> or tools/collector. VERSION_VAR: the variable
# the version is stamped into (the services' pkg/buildinfo, or the
# collector's main.version). VERSION: git describe, from make / the bake file.
ARG MODULE
ARG VERSION=dev
ARG VERSION_VAR=github.com/keda-eks-samples/workloads/pkg/buildinfo.Version
ARG TARGETOS
ARG TARGETARCH
# GOWORK=off: the module builds alone, through its replace of ../../pkg.
ENV CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
WORKDIR /src
# Dependencies first: this layer stays cached until a go.mod or go.sum changes.
COPY pkg/go.mod pkg/go.sum pkg/
# pkg/localproc: a module of its own (no requirements) that pkg and the
# collector's tests require.
COPY pkg/localproc/go.mod pkg/localproc/
COPY ${MODULE}/go.mod ${MODULE}/go.sum ${MODULE}/
RUN --mount=type=cache,target=/go/pkg/mod cd ${MODULE} && go mod download
COPY pkg/ pkg/
COPY ${MODULE}/ ${MODULE}/
# The same flags as `make build` (tools/kedasim/deploytests checks they agree).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd ${MODULE} && GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X ${VERSION_VAR}=${VERSION}" -o /out/app .

# distroless static, non-root (65532): no shell, no package manager; passes
# Pod Security "restricted" with a read-only root filesystem.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG MODULE
ARG VERSION=dev
LABEL org.opencontainers.image.title="${MODULE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="KEDA on Amazon EKS workload sample: ${MODULE}" \
      org.opencontainers.image.source="https://github.com/keda-eks-samples/workloads" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
