# containerd-shim-wasm — build, test and install.
#
#   make build            the shim only (never an engine)
#   make plugin-wasmtime  one engine plugin (release cdylib)
#   make plugins          every engine plugin buildable here
#   make test             plugins + fixtures, then every test (what CI runs)
#   make e2e              only the end-to-end tests through a private containerd
#   make install          shim into $(PREFIX)/bin, plugins into $(ENGINE_DIR)
#   make bench            figures for the plugin path (not run in CI)
#   make demo             runs a wasm container through a private containerd and the shim

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR := $(TARGET_DIR)

BINDIR := $(DESTDIR)$(PREFIX)/bin
ENGINE_DIR := $(DESTDIR)$(PREFIX)/lib/containerd-shim-wasm/engines
SHIM := containerd-shim-wasm-v1
PLUGINS := wasmtime wamr

.PHONY: build plugins fixtures header test e2e lint bench demo install uninstall clean $(addprefix plugin-,$(PLUGINS))

build:
	$(CARGO) build --release -p containerd-shim-wasm

# Plugins are release builds: they run wasm, and a debug cranelift is very slow.
$(addprefix plugin-,$(PLUGINS)): plugin-%:
	$(CARGO) build --release -p engine-$*

plugins: $(addprefix plugin-,$(PLUGINS))
	@echo "SKIPPED: engine plugins wasmer and wasmedge are not written yet; the tests run wasmtime and wamr"

# Test fixtures and tools that cargo builds (the C fixtures are compiled by the tests).
fixtures:
	$(CARGO) build -p fixture-panic-plugin -p oci-image-builder

# Regenerates abi/include/shim_wasm_abi.h from abi/src/ffi.rs.
header:
	UPDATE_HEADER=1 $(CARGO) test -p shim-wasm-abi --test header

test: plugins fixtures
	$(CARGO) test

# Only the end-to-end tests against a private containerd (needs containerd, ctr, busybox).
e2e: plugins fixtures
	$(CARGO) test -p containerd-shim-wasm --test containerd_e2e

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: build plugins
	bash tests/bench/plugin_path.sh $(TARGET_DIR)/release/$(SHIM) $(TARGET_DIR)/release

demo: build plugin-wasmtime
	$(CARGO) build --release -p oci-image-builder
	bash tests/demo/run.sh $(TARGET_DIR)/release/$(SHIM) $(TARGET_DIR)/release $(TARGET_DIR)/release/oci-image-builder

install: build plugins
	install -d $(BINDIR) $(ENGINE_DIR)
	install -m 0755 $(TARGET_DIR)/release/$(SHIM) $(BINDIR)/$(SHIM)
	# containerd-shim-<engine>-v1 links: runwasi's runtime names (io.containerd.<engine>.v1)
	# select the engine by the name the shim is invoked as.
	for p in $(PLUGINS); do \
		install -m 0755 $(TARGET_DIR)/release/libengine_$$p.so $(ENGINE_DIR)/$$p.so || exit 1; \
		ln -sf $(SHIM) $(BINDIR)/containerd-shim-$$p-v1 || exit 1; \
	done

uninstall:
	rm -f $(BINDIR)/$(SHIM)
	for p in $(PLUGINS); do rm -f $(ENGINE_DIR)/$$p.so $(BINDIR)/containerd-shim-$$p-v1; done
	-rmdir $(ENGINE_DIR) $(DESTDIR)$(PREFIX)/lib/containerd-shim-wasm 2>/dev/null

clean:
	$(CARGO) clean
