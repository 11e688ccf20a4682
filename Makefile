# adloop: the commands a developer needs. `make run` and `make test` are the whole set-up on a fresh
# Debian/Ubuntu machine with the Rust toolchain (Postgres and Redis are installed on first use).

.PHONY: run test up down stack-up lint bench

## run: start the stack and services, run adloop end to end, print a report, stop the services
run:
	scripts/run

## test: start Postgres and Redis, then run the whole test suite against them
# First the checks that drive real clients and tools nobody here wrote (Meta's Python SDK against meta-sim, a
# grpcio client against ml-service with random, partly malformed requests too, schemathesis fuzzing gateway-api
# from its OpenAPI document, headless Chromium on the simulator's report and clicking through the operator
# page, the deployment validators), a
# short load of the three services with faults and a Redis crash, then the Rust suite: cargo-nextest (one
# process per test, a clear summary) when installed, plain cargo test otherwise.
test: stack-up
	scripts/check-dev-stack-anywhere
	scripts/run-sdk-conformance
	scripts/run-python-grpc-client
	scripts/run-http-fuzzer
	scripts/check-operator-page
	scripts/run-stack-load
	scripts/check-report-renders
	scripts/check-deploy
	scripts/check-prometheus-scrape
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-tests=fail; \
	else \
		cargo test --workspace; \
	fi

## up: start the stack and every service in the background (logs in .data/logs, URLs in .data/dev.env)
up:
	scripts/services up

## down: stop everything `make up` started
down:
	scripts/services down
	scripts/dev-stack down

stack-up:
	scripts/dev-stack up
	scripts/dev-stack drop-test-databases

## lint: formatting and clippy, warnings denied
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

## bench: benchmarks (release builds; figures are recorded in BENCHMARKS.md)
bench:
	cargo bench -p campaign-sim --bench simulation_speed
	cargo bench -p adloop-allocator --bench allocation_speed
	cargo bench -p adloop-learner --bench learner_speed
	cargo bench -p adloop-cross-learner --bench similar_patterns
	cargo bench -p adloop-cross-learner --bench approximate_patterns
	cargo run --quiet --release -p adloop-allocator --example probability_best_accuracy
	cargo run --quiet --release -p ml-service --example learner_snapshot
	scripts/dev-stack up >/dev/null
	cargo run --quiet --release -p adloop-load --bin cache-replay
	scripts/bench-grpc
	cargo build --quiet --release -p gateway-api -p meta-sim -p capi-relay -p ml-service -p adloop-load --bins
	target/release/executor-bench
	target/release/executor-bench --runs batch-1 --repeat 5
	target/release/executor-bench --runs batch-1 --relative --repeat 3
	target/release/executor-bench --pacing-flood
	ADLOOP_CHAOS_CHANGES=200 cargo test --quiet --release -p gateway-api --test api chaos
	target/release/relay-bench
	scripts/run-stack-load --full
	target/release/learning-bench
	target/release/learner-memory
	ADLOOP_RELAY_CRASH_KILLS=25 cargo test --quiet --release -p capi-relay --test relay crash -- --nocapture
	scripts/quality-table
	scripts/learner-quality-table
	scripts/random-worlds-table
