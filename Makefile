# Every task of the repository. `make` alone lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

SERVICES := webapi sqsworker videoencoder resultanalyzer producer
# Modules in go.work; each must also build on its own (GOWORK=off).
MODULES  := pkg $(addprefix services/,$(SERVICES)) tools/demo tools/bench
BIN      := bin
CHURN    := TestChurnLosesNothing
# Benchmarks that run against the SQS emulator (a few seconds each).
SQS_BENCH := ./services/sqsworker/ ./services/producer/
PKGS     := $(addsuffix /...,$(addprefix ./,$(MODULES)))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build the five service binaries into bin/ (stripped, trimmed paths)
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do go build -trimpath -ldflags='-s -w' -o $(BIN)/$$s ./services/$$s; done
	@ls -l $(BIN)

# Container images (needs a Docker engine; not available on the CI machine).
REGISTRY ?= local
TAG      ?= dev
.PHONY: images
images: ## docker build every service from the root Dockerfile (REGISTRY=<ecr> TAG=<tag>)
	@for s in $(SERVICES); do docker build --build-arg SERVICE=$$s -t $(REGISTRY)/$$s:$(TAG) . || exit 1; done

.PHONY: test
test: deps ## run every test with the race detector (starts real emulators itself)
	go test -race -count=1 -skip '^$(CHURN)$$' $(PKGS)
	@# The churn test on its own, verbose, so its duplicate count is printed.
	go test -race -count=1 -v -run '^$(CHURN)$$' ./services/sqsworker/ | grep -v '^=== RUN'
	@$(MAKE) --no-print-directory standalone

.PHONY: standalone
standalone: ## check every module builds and vets with GOWORK=off
	@for m in $(MODULES); do (cd $$m && GOWORK=off go vet ./...) || exit 1; done
	@echo "every module builds on its own"

.PHONY: deps
deps: ## install the pinned SQS emulator (npm ci)
	@[ -d tools/fauxqs/node_modules ] || (cd tools/fauxqs && npm ci --no-audit --no-fund --loglevel=error)

.PHONY: lint
lint: $(BIN)/staticcheck ## gofmt check, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	go vet $(PKGS)
	$(BIN)/staticcheck $(PKGS)

$(BIN)/staticcheck: tools/gotools/go.mod
	cd tools/gotools && GOWORK=off go build -o ../../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

.PHONY: bench
bench: build deps ## benchmarks (ratios measured in one run) + start-up / RSS / binary-size harness
	go test -run='^$$' -bench=. -benchmem -count=6 ./services/webapi/... | tee $(BIN)/bench.txt
	@# 6 runs each: benchstat gives no confidence interval for fewer.
	go test -run='^$$' -bench=. -benchtime=10x -count=6 $(SQS_BENCH) | tee -a $(BIN)/bench.txt
	cd tools/gotools && GOWORK=off go tool benchstat ../../$(BIN)/bench.txt
	@# Ends with one line naming the goals not met; exits 0 (a report, not a gate).
	go run ./tools/bench -bench-out $(BIN)/bench.txt -bin $(BIN) -services '$(SERVICES)' -repo .

.PHONY: tidy
tidy: ## go mod tidy in every module, go work sync; in CI (CI=true) fail on a dirty tree
	@for m in $(MODULES) tools/gotools; do (cd $$m && GOWORK=off go mod tidy) || exit 1; done
	go work sync
	@if [ -n "$${CI:-}" ]; then git diff --exit-code -- '*.mod' '*.sum' || { echo "run make tidy and commit"; exit 1; }; fi

.PHONY: demo
demo: deps build ## run the services locally against emulators and watch the scaling signals move
	@# Built, then run (not go run, which turns the demo's exit after Ctrl-C
	@# into status 1): make ends with the demo's own status.
	@go build -o $(BIN)/demo ./tools/demo
	$(BIN)/demo -bin $(BIN)

.PHONY: clean
clean: ## remove build output and the emulator's node_modules
	rm -rf $(BIN) tools/fauxqs/node_modules
