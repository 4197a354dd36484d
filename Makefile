# Every task of the repository. `make` alone lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export GOTOOLCHAIN := local
# When this make started: make test and make e2e end by printing their wall time.
MAKE_START := $(shell date +%s)
wall        = echo "make $(1): $$(( ($$(date +%s) - $(MAKE_START)) / 60 )) min $$(( ($$(date +%s) - $(MAKE_START)) % 60 )) s wall (builds included)"
# -trimpath on every go command (the shipped binaries' flag, GO_BUILD_FLAGS):
# go vet, go test, make build, make collector and the cluster binaries then
# share one build cache entry per package instead of compiling a trimmed
# and an untrimmed copy of each dependency graph (a cold CI pays for both).
export GOFLAGS := -buildvcs=false -trimpath

SERVICES := webapi sqsworker videoencoder resultanalyzer producer
# Modules in go.work; each must also build on its own (GOWORK=off).
MODULES  := pkg pkg/localproc $(addprefix services/,$(SERVICES)) tools/demo tools/bench tools/loadgen
BIN      := bin
CHURN    := TestChurnLosesNothing
# Benchmarks that run against the SQS emulator (a few seconds each).
SQS_BENCH := ./services/sqsworker/ ./services/producer/
PKGS     := $(addsuffix /...,$(addprefix ./,$(MODULES)))
# The KEDA module (outside go.work): everything that needs KEDA's or
# Kubernetes' Go code, one module so KEDA's cold build is paid once.
KEDASIM  := tools/kedasim

.PHONY: help
help: ## list the targets, each with where its code lives [Makefile]
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ code = ""; \
	  if (match($$2, / \[[^]]*\]$$/)) { code = substr($$2, RSTART + 2, RLENGTH - 3); $$2 = substr($$2, 1, RSTART - 1) } \
	  printf "  make %-18s %-46s %s\n", $$1, code, $$2 }'

# The version stamped into every binary (GET /healthz, the start-up log,
# the OTel resource's service.version); the Dockerfile's VERSION build arg
# sets the same variable.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_VAR := github.com/keda-eks-samples/workloads/pkg/buildinfo.Version
# The flags every binary is built with, here and in the Dockerfile (tools/kedasim/deploytests
# checks the two agree).
GO_BUILD_FLAGS := -trimpath -ldflags='-s -w -X $(VERSION_VAR)=$(VERSION)'

.PHONY: build
build: ## build the five service binaries into bin/ (stripped, trimmed paths, VERSION stamped) [services/*]
	@mkdir -p $(BIN)
	@echo "building $(SERVICES) into $(BIN)/ (a first build compiles their dependencies: minutes; later ones: seconds)"
	@for s in $(SERVICES); do go build $(GO_BUILD_FLAGS) -o $(BIN)/$$s ./services/$$s; done
	@echo "version $(VERSION)"
	@ls -l $(BIN)

# Our OpenTelemetry Collector: its own module, outside go.work (GOWORK=off).
.PHONY: collector
collector: ## build our OpenTelemetry Collector into bin/otelcol (tools/collector) [tools/collector]
	@mkdir -p $(BIN)
	@echo "building our collector into $(BIN)/otelcol (tools/collector; a first build compiles the OpenTelemetry Collector: ~8 min on 2 cores; later ones: seconds)"
	cd tools/collector && GOWORK=off go build -trimpath -ldflags='-s -w -X main.version=$(VERSION)' -o ../../$(BIN)/otelcol .

.PHONY: test-collector
# Only the packages that have test files: go test also compiles a package
# without any (to report that it builds), and for the collector's main
# package that is a -race build of the whole Collector, ~5 min on a cold
# 2-core machine, that make collector and make lint already build and check.
TESTED_PKGS = $$(GOWORK=off go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
test-collector: collector ## run bin/otelcol on the shipped configs in deploy/collector [tools/collector/internal/collectortest]
	cd tools/collector && GOWORK=off OTELCOL_BIN=$(CURDIR)/$(BIN)/otelcol go test -race -count=1 $(TESTED_PKGS)

# Container images: the root Dockerfile through docker-bake.hcl, linux/amd64
# and linux/arm64 (needs Docker with buildx; no engine on the CI machine —
# tools/kedasim/deploytests checks both files statically).
PARAMS   := deploy/kustomize/params/params.env
param     = $(shell sed -n 's/^$(1)=//p' $(PARAMS))
# Images are tagged with the build version (VERSION, git describe): the ECR
# repositories' tags are immutable (deploy/aws/stack.yaml), so each build is
# a new tag, and a new tag in the pod template is what rolls running pods
# to it (a re-push under an old tag would not reach nodes that cached it).
.PHONY: images
images: ## build the six images for both platforms, tagged VERSION, into the buildx cache (docker buildx bake; make push pushes them) [Dockerfile, docker-bake.hcl]
	REGISTRY=$(call param,ECR_REGISTRY) TAG=$(VERSION) VERSION=$(VERSION) docker buildx bake

.PHONY: push
push: ## log in to ECR, push the six images tagged VERSION (git describe) and set IMAGE_TAG in the params file to it [Dockerfile, docker-bake.hcl]
	@case '$(VERSION)' in *-dirty | dev) echo "VERSION=$(VERSION): commit first; ECR tags are immutable, one tag is one build" >&2; exit 2 ;; esac
	aws ecr get-login-password --region $(call param,AWS_REGION) | docker login --username AWS --password-stdin $(firstword $(subst /, ,$(call param,ECR_REGISTRY)))
	REGISTRY=$(call param,ECR_REGISTRY) TAG=$(VERSION) VERSION=$(VERSION) docker buildx bake --push
	sed -i 's/^IMAGE_TAG=.*/IMAGE_TAG=$(VERSION)/' $(PARAMS)
	@echo "IMAGE_TAG=$(VERSION) in $(PARAMS): the next make deploy rolls the pods to these images"

OVERLAY ?=
OVERLAYS := $(notdir $(wildcard deploy/kustomize/overlays/*))
# Optional components added to the overlay (pod-identity, network-policies,
# alb-ingress): a copy of its kustomization in $(BIN)/overlays/<overlay>
# lists them before components/common, as deploy/README.md says to add them
# by hand. tools/kedasim/deploytests renders every overlay with each combination.
COMPONENTS ?=
.PHONY: render deploy undeploy
render: ## print an overlay's manifests: make render OVERLAY=gateway [COMPONENTS="pod-identity network-policies"] [deploy/kustomize]
	@[ -n "$(filter $(OVERLAY),$(OVERLAYS))" ] || { echo "OVERLAY must be one of: $(OVERLAYS)" >&2; exit 2; }
	@for c in $(COMPONENTS); do [ -f deploy/kustomize/components/$$c/kustomization.yaml ] || { echo "COMPONENTS: no component $$c in deploy/kustomize/components" >&2; exit 2; }; done
	@if [ -z "$(COMPONENTS)" ]; then kubectl kustomize deploy/kustomize/overlays/$(OVERLAY); else \
	  dir=$(BIN)/overlays/$(OVERLAY); mkdir -p "$$dir"; rel=$$(realpath -m --relative-to="$$dir" deploy/kustomize); \
	  awk -v rel="$$rel" -v comps="$(COMPONENTS)" '{ gsub(/\.\.\/\.\.\//, rel "/") } \
	    $$0 == "- " rel "/components/common" { n = split(comps, c, " "); for (i = 1; i <= n; i++) print "- " rel "/components/" c[i] } { print }' \
	    deploy/kustomize/overlays/$(OVERLAY)/kustomization.yaml >"$$dir/kustomization.yaml"; \
	  kubectl kustomize "$$dir"; fi
deploy: ## apply an overlay to the current kubectl context: make deploy OVERLAY=gateway [COMPONENTS="pod-identity"] [deploy/kustomize]
	@$(MAKE) --no-print-directory render OVERLAY=$(OVERLAY) COMPONENTS="$(COMPONENTS)" | kubectl apply -f -
undeploy: ## delete what an overlay created (namespace included): make undeploy OVERLAY=gateway [COMPONENTS=...] [deploy/kustomize]
	@$(MAKE) --no-print-directory render OVERLAY=$(OVERLAY) COMPONENTS="$(COMPONENTS)" | kubectl delete --ignore-not-found -f -

# What KEDA would do: the overlay's trigger, read from the render, polled
# with KEDA's own scaler (tools/kedasim/cmd/preview, the KEDA module) on the
# local signal that bin/demo -serve starts. POLL shortens the shipped
# pollingInterval; DURATION ends it on its own; LOAD=none leaves the load to
# make load (the default drives the built-in Go profile when k6 is not on PATH).
POLL     ?=
DURATION ?=
LOAD     ?= auto
HTML     ?= $(BIN)/preview-$(OVERLAY).html
.PHONY: preview
preview: deps build collector ## what KEDA would do with an overlay's trigger on the local signal: make preview OVERLAY=amp [POLL=5s] [DURATION=2m] [LOAD=none] [HTML=bin/preview-amp.html] [tools/kedasim/cmd/preview]
	@[ -n "$(filter $(OVERLAY),$(OVERLAYS))" ] || { echo "OVERLAY must be one of: $(OVERLAYS)" >&2; exit 2; }
	@echo "building the demo into $(BIN)/demo and the preview into $(BIN)/preview (KEDA's module: a first build takes ~15 min on 2 cores)"
	@go build -o $(BIN)/demo ./tools/demo
	@cd $(KEDASIM) && GOWORK=off go build -o ../../$(BIN)/preview ./cmd/preview
	$(BIN)/preview -overlay $(OVERLAY) -repo . -bin $(BIN) -load $(LOAD)$(if $(POLL), -poll $(POLL))$(if $(DURATION), -duration $(DURATION))$(if $(HTML), -html $(HTML))

.PHONY: iam cluster-config
iam: ## write the IAM policies, IRSA trust policies and role table (bin/iam/roles.txt), filled from the params file, to bin/iam [tools/kedasim/cmd/iam, deploy/iam]
	cd $(KEDASIM) && GOWORK=off go run ./cmd/iam -params ../../$(PARAMS) -iam ../../deploy/iam -out ../../$(BIN)/iam
cluster-config: ## write the eksctl ClusterConfig (deploy/eksctl + params + deploy/iam policies) to bin/eksctl/cluster.yaml [tools/kedasim/cmd/iam, deploy/eksctl]
	cd $(KEDASIM) && GOWORK=off go run ./cmd/iam -params ../../$(PARAMS) -iam ../../deploy/iam -out ../../$(BIN)/iam \
		-eksctl ../../deploy/eksctl/cluster.yaml -eksctl-out ../../$(BIN)/eksctl/cluster.yaml

# The AWS resources other than the cluster: one CloudFormation stack
# (deploy/aws/stack.yaml). Its outputs are params.env values.
STACK ?= keda-samples
.PHONY: stack params-from-stack stack-delete
stack: ## create or update the CloudFormation stack deploy/aws/stack.yaml (queues + DLQs, ECR, AMP, EMF log group) [deploy/aws]
	aws cloudformation deploy --region $(call param,AWS_REGION) --stack-name $(STACK) \
		--template-file deploy/aws/stack.yaml --capabilities CAPABILITY_AUTO_EXPAND \
		--parameter-overrides CloudWatchNamespace=$(call param,CLOUDWATCH_NAMESPACE)
params-from-stack: ## write the stack's outputs (queue URLs, registry, AMP workspace, ...) into the params file [deploy/aws]
	aws cloudformation describe-stacks --region $(call param,AWS_REGION) --stack-name $(STACK) \
		--query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text | deploy/aws/params-from-stack.sh $(PARAMS)
stack-delete: ## delete the CloudFormation stack (empties the ECR repositories; the queues' messages are lost) [deploy/aws]
	aws cloudformation delete-stack --region $(call param,AWS_REGION) --stack-name $(STACK)
	aws cloudformation wait stack-delete-complete --region $(call param,AWS_REGION) --stack-name $(STACK)

# In-cluster load: the k6 Job of deploy/kustomize/load with PROFILE (a
# script of loadtest/) and TARGET (the Service it loads) set by a one-patch
# kustomization written to bin/load. The Job is deleted first: a Job's pod
# template cannot change.
PROFILE  ?= inflight
PROFILES := $(basename $(notdir $(wildcard loadtest/*.js)))
TARGET   ?= $(if $(filter send,$(PROFILE)),sqsworker,webapi)
.PHONY: load-render load-cluster load-cluster-stop
load-render: ## print the in-cluster k6 Job for a profile: make load-render PROFILE=rps [deploy/kustomize/load, loadtest]
	@[ -n "$(filter $(PROFILE),$(PROFILES))" ] || { echo "PROFILE must be one of: $(PROFILES)" >&2; exit 2; }
	@mkdir -p $(BIN)/load
	@printf '%s\n' '# Written by make load-render; edit deploy/kustomize/load instead.' \
		'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' \
		"resources: [$$(realpath -m --relative-to=$(BIN)/load deploy/kustomize/load)]" 'patches:' \
		'- target: {kind: Job, name: k6}' '  patch: |-' '    {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "k6"}, "spec": {"template": {"spec": {"containers": [{"name": "k6", "env": [{"name": "PROFILE", "value": "$(PROFILE)"}, {"name": "TARGET", "value": "$(TARGET)"}]}]}}}}' \
		>$(BIN)/load/kustomization.yaml
	@kubectl kustomize $(BIN)/load
load-cluster: ## run a k6 profile in the cluster against the Service (no port-forward) and follow it: make load-cluster PROFILE=inflight [deploy/kustomize/load, loadtest]
	kubectl -n $(call param,NAMESPACE) delete job k6 --ignore-not-found --wait
	@$(MAKE) --no-print-directory load-render PROFILE=$(PROFILE) TARGET=$(TARGET) | kubectl apply -f -
	kubectl -n $(call param,NAMESPACE) wait --for=condition=Ready pod -l job-name=k6 --timeout=180s
	kubectl -n $(call param,NAMESPACE) logs -f job/k6
load-cluster-stop: ## stop the in-cluster k6 Job and remove its scripts ConfigMap [deploy/kustomize/load]
	@$(MAKE) --no-print-directory load-render | kubectl delete --ignore-not-found -f -

# The local control plane for the e2e tests (tools/kedasim/localcluster):
# etcd, kube-apiserver, kube-controller-manager, kwok and kwokctl, the KEDA
# operator and our KEDA metrics adapter, all `tool`s of the KEDA module
# (tools/kedasim/go.mod: one build list, so the Kubernetes libraries they
# share compile once), built into a cache directory keyed by that module's
# go.sum (a dependency bump rebuilds) and named by version. No
# kube-scheduler: test pods name their node.
CLUSTER_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/keda-eks-samples/cluster/$(shell sha256sum $(KEDASIM)/go.sum | cut -c1-12)
modver       = $(shell cd $(KEDASIM) && GOWORK=off go list -m -f '{{.Version}}' $(1))
K8S_VERSION  = $(call modver,k8s.io/kubernetes)
ETCD_VERSION = $(call modver,go.etcd.io/etcd/server/v3)
KWOK_VERSION = $(call modver,sigs.k8s.io/kwok)
KEDA_VERSION = $(call modver,github.com/kedacore/keda/v2)
# Our adapter's main changes with the repository, not with KEDA: key it by its source too.
ADAPTER_KEY  = $(KEDA_VERSION)-$(shell cat $(KEDASIM)/cmd/keda-adapter/*.go | sha256sum | cut -c1-12)
# kubectl and KEDA parse the apiserver's version: a plain go build reports v0.0.0-master.
KEDA_LDFLAGS = -X github.com/kedacore/keda/v2/version.Version=$(KEDA_VERSION:v%=%)
K8S_LDFLAGS  = $(foreach v,gitVersion=$(K8S_VERSION) gitMajor=$(word 2,$(subst ., ,$(K8S_VERSION:v%=x.%))) gitMinor=$(word 3,$(subst ., ,$(K8S_VERSION:v%=x.%))) gitTreeState=clean,-X k8s.io/component-base/version.$(v))

# $(call cluster-bin,name,version key,package,extra ldflags):
# build one binary into $(CLUSTER_BIN)/name-key unless it is there; print the wall time.
# Written under a temporary name and renamed: worktrees share the cache.
# GOFLAGS as everywhere else: make test-deploy and make lint then reuse the
# packages the KEDA operator and adapter compiled (same flags, same build
# cache entries) instead of compiling KEDA a second time on a cold CI machine.
define cluster-bin
	@out='$(CLUSTER_BIN)/$(1)-$(2)'; if [ -x "$$out" ]; then echo "  $(1): cached ($$out)"; else \
	  echo "  $(1): building $(3) ($(2))"; start=$$(date +%s); \
	  { (cd $(KEDASIM) && GOWORK=off go build -ldflags='-s -w $(4)' -o "$$out.tmp$$$$" $(3)) && mv "$$out.tmp$$$$" "$$out"; } \
	    || { rm -f "$$out.tmp$$$$"; echo "  $(1): build failed" >&2; exit 1; }; \
	  echo "  $(1): built in $$(( $$(date +%s) - start )) s"; fi

endef

.PHONY: cluster-bins
cluster-bins: ## build the local control plane + KEDA binaries into ~/.cache/keda-eks-samples/cluster (cold: 16.5 min once the Collector is built, 2 cores; warm: seconds) [tools/kedasim/go.mod (tools), tools/kedasim/cmd/keda-adapter]
	@mkdir -p '$(CLUSTER_BIN)'
	@echo "cluster binaries in $(CLUSTER_BIN) (cold: ~16 min on 2 cores, KEDA's graph most of it, several GB of Go build cache; warm: seconds)"
	$(call cluster-bin,etcd,$(ETCD_VERSION),go.etcd.io/etcd/server/v3)
	$(call cluster-bin,kube-apiserver,$(K8S_VERSION),k8s.io/kubernetes/cmd/kube-apiserver,$(K8S_LDFLAGS))
	$(call cluster-bin,kube-controller-manager,$(K8S_VERSION),k8s.io/kubernetes/cmd/kube-controller-manager,$(K8S_LDFLAGS))
	$(call cluster-bin,kwok,$(KWOK_VERSION),sigs.k8s.io/kwok/cmd/kwok)
	$(call cluster-bin,kwokctl,$(KWOK_VERSION),sigs.k8s.io/kwok/cmd/kwokctl)
	$(call cluster-bin,keda-operator,$(KEDA_VERSION),github.com/kedacore/keda/v2/cmd/operator,$(KEDA_LDFLAGS))
	$(call cluster-bin,keda-adapter,$(ADAPTER_KEY),./cmd/keda-adapter,$(KEDA_LDFLAGS))

# The binaries' paths, for tools/kedasim/localcluster.BinsFromEnv.
CLUSTER_ENV  = LOCALCLUSTER_KWOKCTL='$(CLUSTER_BIN)/kwokctl-$(KWOK_VERSION)' LOCALCLUSTER_KWOK='$(CLUSTER_BIN)/kwok-$(KWOK_VERSION)' \
	LOCALCLUSTER_ETCD='$(CLUSTER_BIN)/etcd-$(ETCD_VERSION)' LOCALCLUSTER_KUBE_APISERVER='$(CLUSTER_BIN)/kube-apiserver-$(K8S_VERSION)' \
	LOCALCLUSTER_KUBE_CONTROLLER_MANAGER='$(CLUSTER_BIN)/kube-controller-manager-$(K8S_VERSION)' \
	LOCALCLUSTER_KEDA_OPERATOR='$(CLUSTER_BIN)/keda-operator-$(KEDA_VERSION)' LOCALCLUSTER_KEDA_ADAPTER='$(CLUSTER_BIN)/keda-adapter-$(ADAPTER_KEY)'

# End-to-end tests on the local control plane with the real KEDA and HPA
# (build tag e2e: `make test` never starts a cluster). Component logs of each
# test end up in bin/e2e-logs/<test>.
.PHONY: e2e
e2e: cluster-bins build collector deps ## e2e tests on a local control plane with the real KEDA operator, adapter and HPA (cold: cluster-bins first, then ~21 min of tests, fault scenarios included; the longest path is amp's two waits of the shipped 300 s window) [tools/kedasim/e2e, tools/kedasim/localcluster]
	cd $(KEDASIM) && $(CLUSTER_ENV) LOCALCLUSTER_LOG_DIR=$(CURDIR)/$(BIN)/e2e-logs GOWORK=off go test -tags e2e -count=1 -v -parallel 12 -timeout 80m ./localcluster/... ./e2e/...
	@$(call wall,e2e)

# The fault scenarios alone (make e2e runs them with the others, in
# parallel): a signal outage per trigger family (the seeds' fallback as the
# counterexample), KEDA's operator and adapter killed, Job pods Pending,
# SQS failing and throttling while sqsworker drains.
.PHONY: e2e-faults
e2e-faults: cluster-bins build collector deps ## only the fault scenarios of make e2e: each fault's replicas, Jobs and messages against what the settings promise, time to recover (~13 min) [tools/kedasim/e2e/faults*_test.go, pkg/testutil/faultproxy]
	cd $(KEDASIM) && $(CLUSTER_ENV) LOCALCLUSTER_LOG_DIR=$(CURDIR)/$(BIN)/e2e-logs GOWORK=off go test -tags e2e -count=1 -v -parallel 12 -timeout 60m -run '^TestFault' ./e2e/
	@$(call wall,e2e-faults)

# The README's timeline picture: the recorded e2e timeline
# (tools/kedasim/timeline/testdata/e2e-amp.json, copied from
# bin/e2e/TestAMPScalesToWhatTheLoadNeedsAndBack/timeline.json after a
# make e2e) as headless Chromium draws it in its test.
.PHONY: docs-shots
docs-shots: ## redraw docs/e2e-timeline-amp.png from the recorded e2e timeline (headless Chromium) [tools/kedasim/timeline]
	cd $(KEDASIM) && BROWSERTEST_SHOTS=$(CURDIR)/docs GOWORK=off go test -count=1 -run '^TestRecordedE2ETimelinePaintsInChromium$$' ./timeline/

# The deploy tree's tests: every overlay rendered and checked with
# Kubernetes', KEDA's and Pod Security's own code. Its own module outside
# go.work (KEDA's dependency graph); no -race: a race build of KEDA's graph
# would double its cold compile (~11 min on 2 cores); the concurrent code of
# ours these tests drive runs in the services' processes, which the -race
# run below covers.
# -parallel 8: the signal tests (deploytests, cmd/preview) each wait minutes
# on export intervals and rate windows with the CPU mostly idle; go test's
# default runs GOMAXPROCS of them at once (2 here). 13 min 45 s → 8 min 21 s warm.
.PHONY: test-deploy
test-deploy: collector ## the deploy tree's tests (tools/kedasim/deploytests and the KEDA module's packages; cold build ~11 min) [tools/kedasim]
	cd $(KEDASIM) && GOWORK=off go vet ./... && OTELCOL_BIN=$(CURDIR)/$(BIN)/otelcol GOWORK=off go test -count=1 -parallel 8 -timeout 30m ./...

.PHONY: test
test: deps test-k6 test-collector test-deploy ## run every test with the race detector (starts real emulators itself) [every module]
	go test -race -count=1 -skip '^$(CHURN)$$' $(PKGS)
	@# The churn test on its own, verbose, so its duplicate count is printed.
	go test -race -count=1 -v -run '^$(CHURN)$$' ./services/sqsworker/ | grep -v '^=== RUN'
	@$(MAKE) --no-print-directory standalone
	@$(call wall,test)

# The k6 scripts are shipped, not run here (k6 is AGPL: users run their
# own). The TypeScript compiler checks them against @types/k6, both pinned
# in loadtest/package-lock.json; tools/loadgen's tests show it rejects a
# misspelt executor, option or http call, and replay the smoke profile.
.PHONY: test-k6
test-k6: ## type-check the k6 scripts in loadtest/ (tsc + @types/k6; npm ci when needed) [loadtest]
	@[ -d loadtest/node_modules ] || (cd loadtest && npm ci --no-audit --no-fund --loglevel=error)
	cd loadtest && npx --no-install tsc -p .

SCRIPT   ?=
BASE_URL ?=
K6_INSTALL := https://grafana.com/docs/k6/latest/set-up/install-k6/
.PHONY: load
load: ## run a k6 script with your own k6: make load SCRIPT=loadtest/smoke.js BASE_URL=http://127.0.0.1:8080 [loadtest]
	@[ -n "$(SCRIPT)" ] && [ -f "$(SCRIPT)" ] || { echo "SCRIPT must be one of: $(wildcard loadtest/*.js)" >&2; exit 2; }
	@[ -n "$(BASE_URL)" ] || { echo "BASE_URL is required, e.g. BASE_URL=http://127.0.0.1:8080 (on a cluster: make load-cluster PROFILE=...)" >&2; exit 2; }
	@command -v k6 >/dev/null || { echo "k6 is not installed. Install it (this repository ships scripts only): $(K6_INSTALL)" >&2; \
		echo "  (a release binary, Homebrew, or Grafana's apt/rpm repository), then run this again." >&2; exit 127; }
	k6 run -e BASE_URL='$(BASE_URL)' $(SCRIPT)

.PHONY: standalone
standalone: ## check every module builds and vets with GOWORK=off [go.work modules]
	@for m in $(MODULES); do (cd $$m && GOWORK=off go vet ./...) || exit 1; done
	@echo "every module builds on its own"

.PHONY: deps
deps: ## install the pinned SQS emulator (npm ci) [tools/fauxqs]
	@[ -d tools/fauxqs/node_modules ] || (cd tools/fauxqs && npm ci --no-audit --no-fund --loglevel=error)

# Lint covers every module: go.work's in one pass, the ones outside it
# (GOWORK=off) one by one, all with the e2e build tag (no file is excluded
# by it, so one pass checks both builds). staticcheck keeps its results in
# ~/.cache/staticcheck: a warm run re-checks only what changed.
LINT_TAGS  := e2e
LINT_ALONE := tools/collector $(KEDASIM)
# Our test-only packages: helpers and test trees no command may import.
TEST_ONLY  := github\.com/keda-eks-samples/workloads/(pkg/testutil|tools/kedasim/(internal|deploytests|e2e))(/|$$)
.PHONY: lint
lint: $(BIN)/staticcheck lint-imports ## gofmt check, go vet and staticcheck on every module, e2e tag included [every module]
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	go vet -tags $(LINT_TAGS) $(PKGS)
	$(BIN)/staticcheck -tags $(LINT_TAGS) $(PKGS)
	@for m in $(LINT_ALONE); do echo "lint $$m (GOWORK=off)"; \
	  (cd $$m && GOWORK=off go vet -tags $(LINT_TAGS) ./... && GOWORK=off $(CURDIR)/$(BIN)/staticcheck -tags $(LINT_TAGS) ./...) || exit 1; done

.PHONY: lint-imports
lint-imports: ## fail if a command of ours (a main package, any module) imports one of our test-only packages [Makefile]
	@for m in $(MODULES) $(LINT_ALONE); do \
	  mains=$$(cd $$m && GOWORK=off go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...) || exit 1; \
	  [ -n "$$mains" ] || continue; \
	  deps=$$(cd $$m && GOWORK=off go list -deps $$mains) || exit 1; \
	  bad=$$(echo "$$deps" | grep -E '^$(TEST_ONLY)' || [ $$? -eq 1 ]); \
	  if [ -n "$$bad" ]; then echo "$$bad"; echo "$$m: a command imports the test-only package(s) above"; exit 1; fi; \
	done; echo "lint-imports: no command imports a test-only package"

$(BIN)/staticcheck: tools/gotools/go.mod
	cd tools/gotools && GOWORK=off go build -o ../../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

.PHONY: bench
bench: build deps ## benchmarks (ratios measured in one run) + start-up / RSS / binary-size harness [tools/bench]
	go test -run='^$$' -bench=. -benchmem -count=6 ./services/webapi/... | tee $(BIN)/bench.txt
	@# 6 runs each: benchstat gives no confidence interval for fewer.
	go test -run='^$$' -bench=. -benchtime=10x -count=6 $(SQS_BENCH) | tee -a $(BIN)/bench.txt
	cd tools/gotools && GOWORK=off go tool benchstat ../../$(BIN)/bench.txt
	@# Ends with one line naming the goals not met; exits 0 (a report, not a gate).
	go run ./tools/bench -bench-out $(BIN)/bench.txt -bin $(BIN) -services '$(SERVICES)' -repo .

.PHONY: tidy
tidy: ## go mod tidy in every module, go work sync; in CI (CI=true) fail on a dirty tree [every go.mod]
	@for m in $(MODULES) tools/gotools tools/collector $(KEDASIM); do (cd $$m && GOWORK=off go mod tidy) || exit 1; done
	go work sync
	@if [ -n "$${CI:-}" ]; then git diff --exit-code -- '*.mod' '*.sum' || { echo "run make tidy and commit"; exit 1; }; fi

.PHONY: demo
demo: deps build collector ## run the services locally against emulators and watch the scaling signals move [tools/demo]
	@# Built, then run (not go run, which turns the demo's exit after Ctrl-C
	@# into status 1): make ends with the demo's own status.
	@echo "building the demo into $(BIN)/demo"
	@go build -o $(BIN)/demo ./tools/demo
	$(BIN)/demo -bin $(BIN)

.PHONY: clean
clean: ## remove build output and the emulator's node_modules [bin/]
	rm -rf $(BIN) tools/fauxqs/node_modules
