# Moat top-level build. `make` builds everything into build/rel; `make test`
# builds the test variant (ASan + UBSan) into build/asan and runs every suite.
# See README.md.

CC       ?= cc
# libpq's header lives in its own folder (Debian: /usr/include/postgresql).
PQ_CF    := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
CLANG    ?= clang
PKGS     := yaml-0.1 jansson
DEPS_OK  := build/.deps-ok

# -Wno-format-truncation: messages are formatted into fixed, capped buffers on
# purpose; a cut-off message is the intended outcome, not a bug.
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-format-truncation
BASE     := -std=c17 -D_GNU_SOURCE -Iinclude -Ilib -Iagent -Ibuild/bpf $(PQ_CF) -g $(WARN)
REL_CF   := $(BASE) -O2
ASAN_CF  := $(BASE) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=all
ASAN_LD  := -fsanitize=address,undefined

LIB_SRC  := $(wildcard lib/*.c)
CLI_SRC  := $(wildcard cli/*.c)
TRAFFIC_SRC := $(wildcard tools/traffic/*.c)
FLEET_SRC := $(wildcard tools/fleet/*.c)
AGENT_SRC := $(filter-out agent/moatd.c,$(wildcard agent/*.c))
SERVER_SRC := $(wildcard server/*.c)
# The web console, compiled into moat-server (mk/embed.sh, server/static.h):
# web/'s files and the chart library `make deps` installs from npm (web/package.json).
WEB_FILES := $(wildcard web/*.html web/*.js web/*.css web/*.svg)
WEB_VENDOR := web/node_modules/uplot/dist/uPlot.esm.js web/node_modules/uplot/dist/uPlot.min.css
STATIC_GEN := build/gen/static_files.c
SERVER_PKGS := libmicrohttpd sqlite3 libcrypto libpq
SERVER_LIBS = $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null || echo -lmicrohttpd -lsqlite3 -lcrypto -lpq) -lpthread
BPF_SRC  := $(wildcard bpf/*.bpf.c)
BPF_HDR  := $(wildcard bpf/lib/*.h) include/moat/abi.h
SKEL     := build/bpf/moat_tc.skel.h build/bpf/moat_hold.skel.h
BPFTEST_SRC := $(wildcard tests/bpf/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_MAINS := $(wildcard bench/bench_*.c)
ALL_C    := $(LIB_SRC) $(CLI_SRC) $(FUZZ_SRC) $(UNIT_SRC) $(BENCH_SRC) $(TRAFFIC_SRC) $(FLEET_SRC) $(wildcard tests/unit/*.h) \
            $(wildcard lib/*.h cli/*.h include/moat/*.h) $(wildcard agent/*.c agent/*.h) \
            $(BPFTEST_SRC) $(wildcard tests/bpf/frame.*) $(BPF_SRC) $(wildcard bpf/lib/*.h) \
            $(SERVER_SRC) $(wildcard server/*.h)

.PHONY: all deps test unit lint demo bench clean format fuzz man install uninstall
all: build/rel/moat build/rel/moat-traffic build/rel/moatd build/rel/moat-server

deps: $(DEPS_OK)
$(DEPS_OK): mk/deps.sh web/package.json web/package-lock.json
	@sh mk/deps.sh
	@mkdir -p build && touch $@

LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -ljansson)
BPF_LIBS = -lbpf -lelf -lz -lnetfilter_log -lnetfilter_conntrack

# The datapath: clang compiles bpf/*.bpf.c; bpftool makes the skeleton header
# that agent/ includes (kernel and user space share include/moat/abi.h).
build/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDR) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CLANG) -O2 -g -target bpf -D__BPF__ -I/usr/include/$(shell uname -m)-linux-gnu \
	    -Iinclude -Ibpf -Wall -Werror -c $< -o $@
build/bpf/%.skel.h: build/bpf/%.bpf.o
	bpftool gen skeleton $< name $* > $@

# One object tree per variant: build/<variant>/<dir>/<file>.o
define variant
build/$(1)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -MMD -MP -c $$< -o $$@

build/$(1)/libmoat.a: $$(patsubst %.c,build/$(1)/%.o,$$(LIB_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/moat: $$(patsubst %.c,build/$(1)/%.o,$$(CLI_SRC)) build/$(1)/libmoat.a
	$$(CC) $(3) -o $$@ $$^ $$(LIBS) -lcurl -lm

build/$(1)/moat-traffic: $$(patsubst %.c,build/$(1)/%.o,$$(TRAFFIC_SRC))
	$$(CC) $(3) -o $$@ $$^

build/$(1)/moat-fleet: $$(patsubst %.c,build/$(1)/%.o,$$(FLEET_SRC))
	$$(CC) $(3) -o $$@ $$^

$$(patsubst %.c,build/$(1)/%.o,$$(AGENT_SRC) agent/moatd.c $$(BPFTEST_SRC)): $$(SKEL)

build/$(1)/libagent.a: $$(patsubst %.c,build/$(1)/%.o,$$(AGENT_SRC))
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/moatd: build/$(1)/agent/moatd.o build/$(1)/libagent.a build/$(1)/libmoat.a
	$$(CC) $(3) -o $$@ $$^ $$(LIBS) $$(BPF_LIBS) -lcurl -lpthread -lm

build/$(1)/moat-server: $$(patsubst %.c,build/$(1)/%.o,$$(SERVER_SRC) $$(STATIC_GEN)) build/$(1)/libmoat.a
	$$(CC) $(3) -o $$@ $$^ $$(SERVER_LIBS) $$(LIBS) -lm
endef
$(eval $(call variant,rel,$(REL_CF),))
$(eval $(call variant,asan,$(ASAN_CF),$(ASAN_LD)))

$(STATIC_GEN): mk/embed.sh $(WEB_FILES) $(DEPS_OK)
	@mkdir -p $(dir $@)
	sh mk/embed.sh $@ $(WEB_FILES) $(WEB_VENDOR)

# Unit tests (cmocka), built with sanitizers. The allocation-failure suite
# wraps malloc/realloc at link time to make any chosen allocation fail.
WRAP := -Wl,--wrap=malloc,--wrap=realloc
build/asan/tests/unit/%: build/asan/tests/unit/%.o build/asan/tests/unit/testutil.o build/asan/libmoat.a
	$(CC) $(ASAN_LD) $(if $(findstring alloc,$*),$(WRAP)) -o $@ $^ $(LIBS) -lcmocka -lm

UNIT_BINS := $(patsubst tests/unit/%.c,build/asan/tests/unit/%,$(UNIT_SRC))
# The spool is moatd's (agent/), tested like libmoat's pure modules.
build/asan/tests/unit/test_spool: build/asan/tests/unit/test_spool.o build/asan/tests/unit/testutil.o build/asan/libagent.a build/asan/libmoat.a
	$(CC) $(ASAN_LD) -o $@ $^ $(LIBS) -lcmocka -lpthread -lm
build/asan/tests/unit/test_uplink: build/asan/tests/unit/test_uplink.o build/asan/tests/unit/testutil.o build/asan/libagent.a build/asan/libmoat.a
	$(CC) $(ASAN_LD) -o $@ $^ $(LIBS) -lcmocka -lcurl -lpthread -lm
# So are the iptables backend's rules (agent/ipt_rules.c: pure text).
build/asan/tests/unit/test_ipt_rules: build/asan/tests/unit/test_ipt_rules.o build/asan/tests/unit/testutil.o build/asan/libagent.a build/asan/libmoat.a
	$(CC) $(ASAN_LD) -o $@ $^ $(LIBS) -lcmocka -lpthread -lm

# Datapath tests (root): the real BPF programs run with BPF_PROG_TEST_RUN.
build/asan/tests/bpf/%: build/asan/tests/bpf/%.o build/asan/tests/bpf/frame.o build/asan/tests/unit/testutil.o build/asan/libagent.a build/asan/libmoat.a
	$(CC) $(ASAN_LD) -o $@ $^ $(LIBS) $(BPF_LIBS) -lcmocka -lcurl -lpthread -lm
BPFTEST_BINS := $(patsubst tests/bpf/%.c,build/asan/tests/bpf/%,$(BPFTEST_SRC))

# Fuzz targets (libFuzzer, clang): libmoat rebuilt with clang and the fuzzer's
# coverage, ASan and UBSan.
FUZZ_CF := $(filter-out -Wno-format-truncation,$(BASE)) -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
           -fno-sanitize-recover=all
build/fuzz/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CF) -MMD -MP -c $< -o $@
build/fuzz/libmoat.a: $(patsubst %.c,build/fuzz/%.o,$(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^
build/fuzz/tests/fuzz/%: build/fuzz/tests/fuzz/%.o build/fuzz/libmoat.a
	$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS) -lm
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/tests/fuzz/%,$(FUZZ_SRC))
fuzz: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh build/fuzz

build/rel/bench/%: build/rel/bench/%.o build/rel/bench/synth.o build/rel/tests/bpf/frame.o build/rel/libagent.a build/rel/libmoat.a
	$(CC) -o $@ $^ $(LIBS) $(BPF_LIBS) -lcurl -lpthread -lm
BENCH_BINS := $(patsubst bench/%.c,build/rel/bench/%,$(BENCH_MAINS))
build/rel/bench/bench_datapath.o: $(SKEL)

test: $(DEPS_OK) lint $(UNIT_BINS) $(BPFTEST_BINS) build/asan/moat build/rel/moat \
      build/asan/moatd build/asan/moat-traffic build/rel/moatd build/rel/moat-traffic \
      build/asan/moat-server build/rel/moat-server build/rel/moat-fleet $(FUZZ_BINS)
	@sh tests/run.sh build/asan

unit: $(UNIT_BINS)
	@sh tests/run.sh build/asan unit

lint: $(DEPS_OK)
	@sh mk/lint.sh $(ALL_C)

format:
	clang-format -i $(ALL_C)

demo: $(DEPS_OK) build/rel/moat build/rel/moatd build/rel/moat-traffic build/rel/moat-server
	@sh examples/demo.sh build/rel

bench: $(DEPS_OK) $(BENCH_BINS) build/rel/moat build/rel/moatd build/rel/moat-traffic \
       build/rel/moat-server build/rel/moat-fleet
	@sh bench/run.sh build/rel

# Man pages, written from each program's own help (mk/man.py): moat(1) from
# `moat help`, moatd(8) and moat-server(8) from --help.
MANS := build/man/moat.1 build/man/moatd.8 build/man/moat-server.8
man: $(MANS)
build/man/moat.1: build/rel/moat mk/man.py
	@mkdir -p build/man
	/usr/bin/python3 mk/man.py moat $< $@
build/man/%.8: build/rel/% mk/man.py
	@mkdir -p build/man
	/usr/bin/python3 mk/man.py $* $< $@

# make install [PREFIX=/usr/local] [DESTDIR=...]: the programs, the kernel-
# support table (moat and moat-server look in ../share/moat beside themselves)
# and the man pages. deploy/ holds the systemd units and Kubernetes manifests
# (docs/install.md); the systemd units and the OCI hook (Podman, CRI-O) are
# installed too, pointing at $(PREFIX)/sbin.
PREFIX ?= /usr/local
BINDIR := $(DESTDIR)$(PREFIX)/bin
SBINDIR := $(DESTDIR)$(PREFIX)/sbin
DATADIR := $(DESTDIR)$(PREFIX)/share/moat
MANDIR := $(DESTDIR)$(PREFIX)/share/man
UNITDIR := $(DESTDIR)$(PREFIX)/lib/systemd/system
HOOKDIR := $(DESTDIR)$(PREFIX)/share/containers/oci/hooks.d
install: all $(MANS)
	install -d $(BINDIR) $(SBINDIR) $(DATADIR) $(MANDIR)/man1 $(MANDIR)/man8 $(UNITDIR) $(HOOKDIR)
	install -m 0755 build/rel/moat build/rel/moat-traffic $(BINDIR)/
	install -m 0755 build/rel/moatd build/rel/moat-server $(SBINDIR)/
	install -m 0644 data/kernel-support.tsv $(DATADIR)/
	install -m 0644 build/man/moat.1 $(MANDIR)/man1/
	install -m 0644 build/man/moatd.8 build/man/moat-server.8 $(MANDIR)/man8/
	for u in moatd moat-server; do \
	    sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|g' deploy/systemd/$$u.service >$(UNITDIR)/$$u.service; \
	    chmod 0644 $(UNITDIR)/$$u.service; \
	done
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|g' deploy/oci-hooks/moatd.json >$(HOOKDIR)/moatd.json
	chmod 0644 $(HOOKDIR)/moatd.json
uninstall:
	rm -f $(BINDIR)/moat $(BINDIR)/moat-traffic $(SBINDIR)/moatd $(SBINDIR)/moat-server \
	    $(DATADIR)/kernel-support.tsv $(MANDIR)/man1/moat.1 $(MANDIR)/man8/moatd.8 \
	    $(MANDIR)/man8/moat-server.8 $(UNITDIR)/moatd.service $(UNITDIR)/moat-server.service \
	    $(HOOKDIR)/moatd.json
	-rmdir $(DATADIR)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY:
