# Front door for vestnik. The build itself is CMake; this file only strings
# the steps together. `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help
# Prerequisites run in the order written (deps before services before build),
# even under make -j; the compile itself is parallel inside cmake --build.
.NOTPARALLEL:

BUILD_DIR      ?= build
ASAN_BUILD_DIR ?= build-asan
JOBS           ?= $(shell nproc 2>/dev/null || echo 2)
STATE_DIR      := $(or $(VESTNIK_STATE_DIR),$(CURDIR)/.services)
ENV_FILE       := $(STATE_DIR)/env
WERROR         := $(if $(filter true 1 yes,$(CI)),ON,OFF)
FMT_DIRS       := core db bot fsm templates notifier tests bench

# with_env: shell prefix that loads the services env file (URLs, ports) into
# the environment, or stops with a clear message when it is not there.
with_env = set -euo pipefail; \
	if [ ! -r "$(ENV_FILE)" ]; then \
		echo "make: $(ENV_FILE) is missing; run 'make services-up' first" >&2; exit 1; \
	fi; \
	set -a; . "$(ENV_FILE)"; set +a;

.PHONY: help deps services-up services-down services-status build run test \
	test-asan unit bench fuzz fmt fmt-check clean distclean

help: ## list the targets
	@echo "vestnik — make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  %-16s %s\n", $$1, $$2 }'
	@echo "variables: BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) HTTP_PORT=$${HTTP_PORT:-8080}" \
		"CI=$(CI) (CI=true adds -Werror)"

deps: ## install Debian packages and maildev (scripts/deps)
	@scripts/deps

services-up: deps ## start redis, postgres, rabbitmq, mail (scripts/services up)
	@scripts/services up

services-down: ## stop the local services
	@scripts/services down

services-status: ## show which local services run, and on which ports
	@scripts/services status || true

build: ## configure and build into build/ (RelWithDebInfo)
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVN_WERROR=$(WERROR)
	cmake --build $(BUILD_DIR) -j$(JOBS) -- --no-print-directory

run: deps services-up build ## migrate, start the fake Bot API and `vestnik all` with the example bot; play a conversation
	@$(with_env) scripts/run-dev

test: deps services-up build ## all tests against the local services, then the same under ASan/UBSan
	@echo "== ctest ($(BUILD_DIR))"
	@$(with_env) ctest --test-dir $(BUILD_DIR) --output-on-failure --no-tests=error -j$(JOBS)
	@$(MAKE) --no-print-directory test-asan

test-asan: deps services-up ## build into build-asan with ASan+UBSan and run all tests there
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DVN_SANITIZE=ON -DVN_WERROR=$(WERROR)
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS) -- --no-print-directory
	@echo "== ctest ($(ASAN_BUILD_DIR), ASan+UBSan)"
	@$(with_env) \
	export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
	ctest --test-dir $(ASAN_BUILD_DIR) --output-on-failure --no-tests=error -j$(JOBS)

unit: deps build ## unit tests only (ctest -L unit); needs no services
	ctest --test-dir $(BUILD_DIR) -L unit --output-on-failure --no-tests=error -j$(JOBS)

FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS   ?= 60

fuzz: deps ## build the libFuzzer targets with clang and run each FUZZ_SECONDS (default 60)
	CC=clang cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DVN_FUZZ=ON -DVN_WERROR=$(WERROR)
	cmake --build $(FUZZ_BUILD_DIR) -j$(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$$//' | tr '\n' ' ')
	@set -euo pipefail; for src in tests/fuzz/fuzz_*.c; do \
		name=$$(basename "$$src" .c); work="$(FUZZ_BUILD_DIR)/corpus/$$name"; \
		mkdir -p "$$work"; \
		seeds="tests/fuzz/corpus/$$name"; [ -d "$$seeds" ] || seeds=""; \
		dict=""; [ -f "tests/fuzz/$$name.dict" ] && dict="-dict=tests/fuzz/$$name.dict"; \
		echo "== fuzz $$name for $(FUZZ_SECONDS) s (seeds: $${seeds:-none})"; \
		rc=0; "$(FUZZ_BUILD_DIR)/tests/fuzz/$$name" -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix="$(FUZZ_BUILD_DIR)/$$name-" $$dict "$$work" $$seeds >"$$work.log" 2>&1 || rc=$$?; \
		grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|SUMMARY)" "$$work.log" || true; \
		if [ "$$rc" -ne 0 ]; then tail -40 "$$work.log"; \
			echo "fuzz: $$name failed (exit $$rc); the input is $(FUZZ_BUILD_DIR)/$$name-*"; exit 1; fi; \
	done

bench: deps services-up build ## run every bench/*.sh
	@set -euo pipefail; shopt -s nullglob; n=0; \
	for b in bench/*.sh; do echo "== $$b"; VESTNIK_BIN="$(abspath $(BUILD_DIR))/vestnik" bash "$$b"; n=$$((n + 1)); done; \
	[ "$$n" -gt 0 ] || echo "bench: no bench/*.sh"

fmt: ## clang-format -i every .c/.h file
	@files=$$(find $(FMT_DIRS) -name '*.[ch]' -type f 2>/dev/null; ls *.[ch] 2>/dev/null || true); \
	if [ -n "$$files" ]; then clang-format -i $$files; fi

fmt-check: ## fail when a .c/.h file is not clang-formatted
	@files=$$(find $(FMT_DIRS) -name '*.[ch]' -type f 2>/dev/null; ls *.[ch] 2>/dev/null || true); \
	if [ -n "$$files" ]; then clang-format --dry-run -Werror $$files; fi

clean: ## remove build directories (services and .tools stay)
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)

distclean: clean ## also stop the services and remove .services and .tools
	-scripts/services down
	@pg=$$(cat "$(STATE_DIR)/postgres.home" 2>/dev/null || true); \
	case "$$pg" in /var/tmp/vestnik-pg-*) echo "rm -rf $$pg"; rm -rf "$$pg";; esac
	rm -rf "$(STATE_DIR)" .tools
