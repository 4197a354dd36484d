# docker buildx bake: the five services and the collector, for linux/amd64
# and linux/arm64 (Graviton nodes), from the root Dockerfile.
#   make images                  build all six (REGISTRY and TAG from the params file)
#   make push                    log in to ECR and push them
#   docker buildx bake webapi    one of them

variable "REGISTRY" {
  default = "local"
}

variable "TAG" {
  default = "dev"
}

variable "VERSION" {
  default = "dev"
}

group "default" {
  targets = ["webapi", "sqsworker", "videoencoder", "resultanalyzer", "producer", "otel-collector"]
}

target "_common" {
  dockerfile = "Dockerfile"
  context    = "."
  platforms  = ["linux/amd64", "linux/arm64"]
  args = {
    VERSION = VERSION
  }
}

target "service" {
  name     = svc
  inherits = ["_common"]
  matrix = {
    svc = ["webapi", "sqsworker", "videoencoder", "resultanalyzer", "producer"]
  }
  args = {
    MODULE = "services/${svc}"
  }
  tags = ["${REGISTRY}/keda-samples/${svc}:${TAG}"]
}

target "otel-collector" {
  inherits = ["_common"]
  args = {
    MODULE         = "tools/collector"
    VERSION_VAR = "main.version"
  }
  tags = ["${REGISTRY}/keda-samples/otel-collector:${TAG}"]
}
