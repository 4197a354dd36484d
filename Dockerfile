# One image recipe for every service. Build from the repository root:
#   docker build --build-arg SERVICE=webapi -t <registry>/webapi:<tag> .
# (make images does this for all five.)
ARG SERVICE

FROM golang:1.26 AS build
ARG SERVICE
# GOWORK=off: build the one module through its replace of ../../pkg, so the
# image needs only pkg/ and that service.
ENV CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
WORKDIR /src
# Dependencies first: this layer stays cached until a go.mod or go.sum changes.
COPY pkg/go.mod pkg/go.sum pkg/
COPY services/${SERVICE}/go.mod services/${SERVICE}/go.sum services/${SERVICE}/
RUN cd services/${SERVICE} && go mod download
COPY pkg/ pkg/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN cd services/${SERVICE} && go build -trimpath -ldflags='-s -w' -o /out/app .

# distroless static, non-root (65532): passes Pod Security "restricted" with
# runAsNonRoot, a read-only root filesystem and no capabilities.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/app"]
