# The two commands a fresh machine needs: `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test lint build bench bench-full bench-cluster dashboard

## Run Sightline on embedded defaults (data in ./sightline-data, API on 127.0.0.1:7700).
run: dashboard
	$(CARGO) run --release -p sightline -- serve

## Every check CI runs: format, lints, and every test against real NATS, PostgreSQL and S3 (s3s-fs).
test: lint
	./scripts/services.sh
	./scripts/s3s.sh >/dev/null
	./scripts/chromium.sh
	npm ci --prefix cli/tests/bundle --no-audit --no-fund --loglevel=error
	npm ci --prefix alerting/tests/receiver --no-audit --no-fund --loglevel=error
	./scripts/aiosmtpd.sh >/dev/null
	npm ci --prefix sdk --no-audit --no-fund --loglevel=error
	npm run build --prefix sdk --silent
	npm test --prefix sdk --silent
	$(MAKE) dashboard
	npm test --prefix dashboard --silent
	$(CARGO) nextest run --workspace --no-fail-fast

## The web UI, built into dashboard/dist and embedded into the binary.
dashboard:
	npm ci --prefix dashboard --no-audit --no-fund --loglevel=error
	npm run build --prefix dashboard --silent

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build: dashboard
	$(CARGO) build --release -p sightline

## Sightline side by side with PostgreSQL, ClickHouse (chDB) and raw JetStream on the same
## events: writes bench/results/<date>-quick.json and bench/README.md's table (about 2 minutes).
bench: build
	./bench/run.sh quick

## The same at 10M events, with a CPU profile (about twenty minutes).
bench-full: build
	./bench/run.sh full

## Sightline as a cluster on this machine: 1, 2 and 3 worker processes, their exchange, and the
## recovery after a kill (bench/results/<date>-cluster.json; about three minutes).
bench-cluster: build
	./scripts/services.sh >/dev/null
	python3 bench/cluster.py --events 1000000 --processes 1,2,3 --recovery-events 3000000
