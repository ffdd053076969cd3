# containerd-shim-wasm — build, test and install.
#
#   make build            the shim only (never an engine)
#   make plugin-wasmtime  one engine plugin (release cdylib)
#   make plugins          every engine plugin buildable here
#   make test             plugins + fixtures, then every test (what CI runs), the
#                         AppArmor one in a virtual machine if this kernel has none
#   make e2e              only the end-to-end tests through a private containerd (ctr, CRI)
#   make install          the package layout under $(PREFIX) (default /usr/local)
#   make packages         Debian packages (cargo-deb) into $(PACKAGE_DIR)
#   make rpms             RPM packages (cargo-generate-rpm) into $(RPM_DIR)
#   make test-packages    lintian and the installed-system test (.deb), RPM contents
#   make bench            figures for the plugin path (not run in CI)
#   make stress           tasks/s, latency and leaks under load, and memory per task,
#                         against containerd's runc shim (not run in CI)
#   make soak             10,000 tasks through one shim (not run in CI)
#   make wasi-testsuite   the official WASI test suite through `run`, every plugin built,
#                         and through containerd (WASI_TESTSUITE=checkout; not run in CI,
#                         see docs/engines.md)
#   make demo             runs a wasm container through a private containerd and the shim

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR := $(TARGET_DIR)

SYSCONFDIR ?= /etc
PACKAGE_DIR ?= $(TARGET_DIR)/packages
RPM_DIR ?= $(TARGET_DIR)/rpms

BINDIR := $(DESTDIR)$(PREFIX)/bin
ENGINE_DIR := $(DESTDIR)$(PREFIX)/lib/containerd-shim-wasm/engines
SHARE_DIR := $(DESTDIR)$(PREFIX)/share/containerd-shim-wasm
DOC_DIR := $(DESTDIR)$(PREFIX)/share/doc/containerd-shim-wasm
CONFIG := $(DESTDIR)$(SYSCONFDIR)/containerd-shim-wasm/config.toml
SHIM := containerd-shim-wasm-v1
# Plugins built here; ENGINES are the engines the shim has runtime names for.
PLUGINS := wasmtime wamr wasmer
ENGINES := wasmtime wasmer wamr wasmedge

# The WasmEdge plugin needs an installed libwasmedge (WasmEdge 0.17.1), found where
# wasmedge-sys looks for it; without one it is reported as SKIPPED and never built.
WASMEDGE_LIB := $(firstword $(wildcard $(addsuffix /libwasmedge.so,$(WASMEDGE_LIB_DIR) \
	$(WASMEDGE_DIR)/lib64 $(WASMEDGE_DIR)/lib $(HOME)/.wasmedge/lib64 $(HOME)/.wasmedge/lib \
	/usr/local/lib64 /usr/local/lib)))
WASMEDGE_SKIPPED := SKIPPED: engine plugin wasmedge: no libwasmedge found (WasmEdge 0.17.1); install \
	WasmEdge (https://wasmedge.org/docs/start/install, or set WASMEDGE_DIR) to build and test it
ifneq ($(WASMEDGE_LIB),)
PLUGINS += wasmedge
else
LINT_EXCLUDE := --exclude engine-wasmedge
endif

.PHONY: build plugins plugin-wasmedge fixtures header test e2e lint deps-demo deps-test deps-packages bench stress soak fuzz wasi-testsuite wasi-testsuite-given demo install uninstall packages rpms test-packages clean $(addprefix plugin-,$(PLUGINS))

build:
	$(CARGO) build --release -p containerd-shim-wasm

# Plugins are release builds: they run wasm, and a debug cranelift is very slow.
$(addprefix plugin-,$(PLUGINS)): plugin-%:
	$(CARGO) build --release -p engine-$*

plugins: $(addprefix plugin-,$(PLUGINS))
ifeq ($(WASMEDGE_LIB),)
	@echo "$(WASMEDGE_SKIPPED)"
plugin-wasmedge:
	@echo "$(WASMEDGE_SKIPPED)"
endif

# Test fixtures and tools that cargo builds (the C fixtures are compiled by the tests).
fixtures:
	$(CARGO) build -p fixture-panic-plugin -p oci-image-builder

# Regenerates abi/include/shim_wasm_abi.h from abi/src/ffi.rs.
header:
	UPDATE_HEADER=1 $(CARGO) test -p shim-wasm-abi --test header

# System packages: packaging/build-deps.sh installs the missing ones (apt, as root) and
# prints them, or prints the list and stops.
deps-demo deps-test deps-packages: deps-%:
	@bash packaging/build-deps.sh $*

# The AppArmor test once more in a virtual machine where this kernel has no AppArmor.
test: deps-test plugins fixtures
	$(CARGO) test
	CARGO=$(CARGO) bash tests/vm/apparmor.sh

# Only the end-to-end tests against a private containerd (ctr, and its CRI plugin).
e2e: deps-test plugins fixtures
	$(CARGO) test -p containerd-shim-wasm --test containerd_e2e --test node_exec --test node_operations --test cri

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace $(LINT_EXCLUDE) --all-targets -- -D warnings

# Start times through containerd with the precompile cache (cold, warm, off): BENCH_RUNS
# (10), BENCH_MODULE_KIB (100,1024,51200); see docs/performance.md.
bench: build plugins fixtures
	bash tests/bench/plugin_path.sh $(TARGET_DIR)/release/$(SHIM) $(TARGET_DIR)/release
	$(CARGO) test --release -p containerd-shim-wasm --test startup -- --ignored --nocapture
	$(CARGO) test --release -p containerd-shim-wasm --test http_serve -- --ignored --nocapture bench_

# The stress harness (tests/support/stress) on a release shim; figures are printed, see
# docs/performance.md. STRESS_TASKS (300), STRESS_PARALLEL (1,2,8,20), DENSITY_TASKS (20),
# SOAK_TASKS (10000), SOAK_PARALLEL (20).
STRESS_TEST = $(CARGO) test --release -p containerd-shim-wasm --test stress -- --ignored --nocapture --test-threads=1

stress: plugins fixtures
	$(STRESS_TEST) stress_ density

soak: plugins fixtures
	$(STRESS_TEST) soak

# Fuzzing (not in CI): libFuzzer through cargo-fuzz (installed if missing), on the nightly
# toolchain it needs; FUZZ_SECONDS per target (300). Seeds: the packaged TOML files, the
# corpus modules and fuzz/seeds; crashes land in fuzz/artifacts/<target>/ (see fuzz/Cargo.toml).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS = config_text options_message plugin_boundary image_manifest container_spec
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p $(addprefix fuzz/corpus/,$(FUZZ_TARGETS))
	cp packaging/config.toml packaging/runtimes/*.toml fuzz/corpus/config_text/
	cp $(TARGET_DIR)/corpus/*.wasm fuzz/corpus/plugin_boundary/ 2>/dev/null || true
	cp fuzz/seeds/image_manifest/*.json fuzz/corpus/image_manifest/
	cp fuzz/seeds/container_spec/*.json fuzz/corpus/container_spec/
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

# The official WASI test suite's preview-1 tests (72) through `run`, for every plugin built.
# No registry ships the suite: WASI_TESTSUITE is a checkout of its prod/testsuite-base
# branch (git clone -b prod/testsuite-base https://github.com/WebAssembly/wasi-testsuite).
# Then the same tests through a private containerd (tests/wasi_testsuite.rs), on wasmtime
# or WASI_TESTSUITE_ENGINE: each must end as it ends through `run`.
wasi-testsuite: wasi-testsuite-given build plugins fixtures
	TARGET_DIR=$(TARGET_DIR) python3 tests/wasi-testsuite/run.py --suite $(WASI_TESTSUITE); \
	status=$$?; WASI_TESTSUITE=$(abspath $(WASI_TESTSUITE)) $(CARGO) test -p containerd-shim-wasm --test wasi_testsuite \
		-- --nocapture && exit $$status

wasi-testsuite-given:
	@test -n "$(WASI_TESTSUITE)" || { echo "set WASI_TESTSUITE to a checkout of wasi-testsuite's prod/testsuite-base branch (see docs/engines.md)"; exit 2; }

demo: deps-demo build plugin-wasmtime
	$(CARGO) build --release -p oci-image-builder
	bash tests/demo/run.sh $(TARGET_DIR)/release/$(SHIM) $(TARGET_DIR)/release $(TARGET_DIR)/release/oci-image-builder

# The same layout as the packages (see packaging/README.md), under $(PREFIX). The config
# file is installed only if absent and removed only if unchanged.
install: build plugins
	install -d $(BINDIR) $(ENGINE_DIR) $(SHARE_DIR)/runtimes $(DOC_DIR)/examples/containerd \
		$(DOC_DIR)/examples/kubernetes $(dir $(CONFIG))
	install -m 0755 $(TARGET_DIR)/release/$(SHIM) $(BINDIR)/$(SHIM)
	# containerd-shim-<engine>-v1 links: runwasi's runtime names (io.containerd.<engine>.v1)
	# select the engine by the name the shim is invoked as.
	for e in $(ENGINES); do ln -sf $(SHIM) $(BINDIR)/containerd-shim-$$e-v1 || exit 1; done
	for p in $(PLUGINS); do \
		install -m 0644 $(TARGET_DIR)/release/libengine_$$p.so $(ENGINE_DIR)/$$p.so || exit 1; \
	done
	install -m 0644 packaging/runtimes/*.toml $(SHARE_DIR)/runtimes/
	install -m 0644 README.md docs/*.md $(DOC_DIR)/
	install -m 0644 packaging/examples/containerd/* $(DOC_DIR)/examples/containerd/
	install -m 0644 packaging/examples/kubernetes/* $(DOC_DIR)/examples/kubernetes/
	[ -e $(CONFIG) ] || install -m 0644 packaging/config.toml $(CONFIG)

uninstall:
	rm -f $(BINDIR)/$(SHIM)
	for e in $(ENGINES); do rm -f $(ENGINE_DIR)/$$e.so $(BINDIR)/containerd-shim-$$e-v1; done
	rm -rf $(SHARE_DIR) $(DOC_DIR)
	-cmp -s packaging/config.toml $(CONFIG) && rm -f $(CONFIG)
	-rmdir $(ENGINE_DIR) $(DESTDIR)$(PREFIX)/lib/containerd-shim-wasm $(dir $(CONFIG)) 2>/dev/null

# Debian packages: containerd-shim-wasm and containerd-shim-wasm-engine-<engine> for each
# plugin built here (metadata in host/Cargo.toml and plugins/*/Cargo.toml).
packages: build plugins
	@command -v cargo-deb >/dev/null || { echo "make packages needs cargo-deb: cargo install cargo-deb --locked"; exit 1; }
	rm -rf $(PACKAGE_DIR) && mkdir -p $(PACKAGE_DIR)
	$(CARGO) deb --no-build -p containerd-shim-wasm $(if $(SHIM_WASM_NO_RELR),--variant no-relr) -o $(PACKAGE_DIR)/
	for p in $(PLUGINS); do $(CARGO) deb --no-build -p engine-$$p -o $(PACKAGE_DIR)/ || exit 1; done
	@ls -l $(PACKAGE_DIR)

# RPM packages with the same contents (metadata in the same Cargo.toml files).
rpms: build plugins
	@command -v cargo-generate-rpm >/dev/null || { echo "make rpms needs cargo-generate-rpm: cargo install cargo-generate-rpm --locked"; exit 1; }
	rm -rf $(RPM_DIR) && mkdir -p $(RPM_DIR)
	$(CARGO) generate-rpm -p host -o $(RPM_DIR)/
	for p in $(PLUGINS); do $(CARGO) generate-rpm -p plugins/$$p -o $(RPM_DIR)/ || exit 1; done
	@ls -l $(RPM_DIR)

# lintian, then the installed-system test: dpkg -i/-r on this machine with a private
# containerd (needs root; leaves the system as it found it); then the RPMs' contents
# and relations, read with rpm -qp.
test-packages: packages rpms fixtures
	bash tests/packaging/installed_system.sh $(PACKAGE_DIR) $(TARGET_DIR)/debug/oci-image-builder
	bash tests/packaging/check_rpms.sh $(RPM_DIR) $(PACKAGE_DIR)

clean:
	$(CARGO) clean
