# The two commands. Both install whatever is missing first (see scripts/setup.sh).
.PHONY: run test

## run: build the release app and serve it at http://127.0.0.1:3000 (demo data on first run)
run:
	@bash scripts/run.sh

## test: fmt, clippy, all Rust tests, release build, and the browser tests
test:
	@bash scripts/test.sh
