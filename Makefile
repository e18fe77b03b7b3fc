# Kiln build. `make run` and `make test` are the two entry points the README
# documents; both install missing Debian packages first.
#
# Sources are discovered per folder; adding a .c file to src/<module>/ adds it
# to libkiln. Generated artifacts live only under build/.

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
# SANITIZE=1: ASan + UBSan build of the library, kiln, unit tests and tools,
# in its own directory (build-san) and with clang unless CC is given. The
# artifacts Kiln compiles at run time are not sanitized. See
# docs/internals/fuzzing.md for the runtime options tests/run.sh sets.
ifeq ($(SANITIZE),1)
BUILD    ?= build-san
ifeq ($(origin CC),default)
CC       := clang
endif
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN    := -fsanitize=address,undefined
export KILN_SANITIZE := 1
# The runtime owns SIGSEGV/SIGBUS (guard pages, 8 GiB PROT_NONE reservations)
# and its own signal and guest stacks: ASan must not take them over.
SAN_ASAN := handle_segv=0:handle_sigbus=0:allow_user_segv_handler=1
SAN_ASAN := $(SAN_ASAN):detect_stack_use_after_return=0:use_sigaltstack=0:detect_leaks=1
# A 4 MiB quarantine (default 256) keeps use-after-free detection while the
# stress test's flat-RSS check measures Kiln rather than the quarantine.
SAN_ASAN := $(SAN_ASAN):quarantine_size_mb=4
export ASAN_OPTIONS ?= $(SAN_ASAN)
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
endif
BUILD    ?= build
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
KCFLAGS  := -std=c11 -D_GNU_SOURCE -fvisibility=hidden -fno-strict-aliasing -Iinclude -Isrc \
            -I$(BUILD)/gen $(WARN) $(CFLAGS) $(SANFLAGS)
# Artifacts (.so) resolve wasm_rt_* against the kiln executable.
LDEXPORT := -Wl,--export-dynamic-symbol=wasm_rt_*
# libcurl, libmicrohttpd and libcrypto are not linked: src/platform/netlibs.c and
# cryptolib.c load them on first use (a cached `kiln run` needs none;
# docs/internals/snapshot.md §5).
LIBS     := -lyaml -ljansson -lyajl -lsqlite3 -lffi -lm -lpthread -ldl -lrt

LIB_SRC  := $(wildcard src/base/*.c src/platform/*.c src/runtime/*.c src/aot/*.c src/http/*.c \
                       src/config/*.c src/store/*.c src/net/*.c src/loop/*.c src/admin/*.c \
                       src/abi/*.c src/abi/*/*.c src/component/*.c src/embed/*.c \
                       src/event/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

.PHONY: all deps run test tests bench clean examples fuzz fuzz-long storm lib install
all: $(BUILD)/kiln $(BUILD)/libkiln.so

deps:
	@sh scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -MMD -MP -c $< -o $@

# The descriptor contract is embedded into every artifact's generated C.
$(BUILD)/gen/descriptor_h.inc: src/runtime/descriptor.h
	@mkdir -p $(dir $@)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/"&\\n"/' $< > $@
$(BUILD)/obj/src/aot/descriptor_gen.o: $(BUILD)/gen/descriptor_h.inc

# Kiln's WIT packages (wit/), printed by `kiln wit`: one {"path", "text"}
# initialiser per file, the main package first.
WIT_SRC := wit/kiln-faas.wit $(sort $(wildcard wit/deps/*/*.wit))
$(BUILD)/gen/wit_files.inc: $(WIT_SRC)
	@mkdir -p $(dir $@)
	for f in $(WIT_SRC); do printf '{"%s",\n' "$${f#wit/}"; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/.*/"&\\n"/' $$f; printf '},\n'; done > $@
$(BUILD)/obj/src/cli/cmd_wit.o: $(BUILD)/gen/wit_files.inc

$(BUILD)/libkiln.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kiln: $(CLI_OBJ) $(BUILD)/libkiln.a
	$(CC) $(LDSAN) $(LDEXPORT) -o $@ $(CLI_OBJ) $(BUILD)/libkiln.a $(LIBS)

# The shared library (docs/internals/embed.md): the library's objects built
# -fPIC in their own directory. It exports only what the version script names:
# the Extism C API (extism_*, kiln_extism_*) and the wasm_rt_* entries that
# compiled artifacts, dlopen'ed inside the host program, resolve against.
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -fPIC -MMD -MP -c $< -o $@
$(BUILD)/pic/src/aot/descriptor_gen.o $(BUILD)/pic/src/aot/toolchain.o: $(BUILD)/gen/descriptor_h.inc
$(BUILD)/libkiln.so: $(PIC_OBJ) src/embed/libkiln.map
	$(CC) -shared $(LDSAN) -Wl,--version-script=src/embed/libkiln.map -Wl,-soname,libkiln.so \
	    -o $@ $(PIC_OBJ) $(LIBS)
lib: $(BUILD)/libkiln.so

# make install PREFIX=DIR: <extism.h> (Extism's header name), the Kiln
# headers under include/kiln/, lib/libkiln.so and lib/pkgconfig/kiln.pc, so
# that `cc prog.c $(pkg-config --cflags --libs kiln)` builds an Extism host.
PREFIX   ?= /usr/local
KILN_VER := $(shell sed -n 's/^\#define KILN_VERSION "\(.*\)"/\1/p' include/kiln/kiln.h)
install: $(BUILD)/libkiln.so
	install -d $(DESTDIR)$(PREFIX)/include/kiln $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/kiln/extism.h $(DESTDIR)$(PREFIX)/include/extism.h
	install -m 644 include/kiln/*.h $(DESTDIR)$(PREFIX)/include/kiln/
	install -m 755 $(BUILD)/libkiln.so $(DESTDIR)$(PREFIX)/lib/libkiln.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(KILN_VER)|' src/embed/kiln.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/kiln.pc

# Test programs: every tests/unit/test_*.c is one cmocka binary; tests/tools/*.c
# are harnesses (spec runner, stress test). All link the static library.
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) $(LDSAN) -Itests $(LDEXPORT) -o $@ $< $(BUILD)/libkiln.a -lcmocka $(LIBS)
$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) $(LDSAN) -Itests $(LDEXPORT) -o $@ $< $(BUILD)/libkiln.a $(LIBS)

tests: $(BUILD)/kiln $(UNIT_BIN) $(TOOL_BIN)

examples: $(BUILD)/kiln
	@$(MAKE) -s -C examples BUILD=$(abspath $(BUILD))/examples

# One command: install, build, run the bundled examples.
run: deps
	@$(MAKE) -s all examples
	@sh scripts/run-examples.sh $(BUILD)

# One command: install, build, run every test; ends with "N passed, N failed".
test: deps
	@$(MAKE) -s tests fuzz
	@sh tests/run.sh $(BUILD)

# ---- fuzzing (docs/internals/fuzzing.md) ----------------------------------------
# Every tests/fuzz/fuzz_<target>.c is one libFuzzer binary $(BUILD)/fuzz/<target>,
# linked with an ASan+UBSan, coverage-instrumented copy of the library built
# by clang in its own object directory. fake_instance.c stands in for the
# runtime entry points host functions call (-Wl,--wrap, see tests/fuzz/fuzz.h).
FUZZ_CC      ?= clang
FUZZ_OBJ     := $(BUILD)/fuzz-obj
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# Warnings are not errors here: clang's set differs from the default compiler's.
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -fno-strict-aliasing -Iinclude -Isrc -I$(BUILD)/gen \
                $(filter-out -Werror,$(WARN)) -O1 -g $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_OBJ)/%.o)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/%)
FUZZ_WRAP    := $(foreach s,kiln_instance_state kiln_instance_memory kiln_host_trap kiln_host_exit \
                  kiln_host_enter kiln_host_leave kiln_host_check_stack,-Wl,--wrap=$(s))
FUZZ_SECONDS ?= 60

$(FUZZ_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(FUZZ_OBJ)/src/aot/descriptor_gen.o $(FUZZ_OBJ)/src/aot/toolchain.o: $(BUILD)/gen/descriptor_h.inc
$(FUZZ_OBJ)/libkiln-fuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)/tests/fuzz/fake_instance.o $(FUZZ_OBJ)/libkiln-fuzz.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/fuzz -fsanitize=fuzzer $(FUZZ_WRAP) -o $@ $< \
	    $(FUZZ_OBJ)/tests/fuzz/fake_instance.o $(FUZZ_OBJ)/libkiln-fuzz.a $(LIBS)

fuzz: $(FUZZ_BIN)

# A long run: FUZZ_SECONDS in total, split evenly between the targets.
fuzz-long: deps
	@$(MAKE) -s fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(BUILD)

# The full fault storm (docs/internals/storm.md): 1,000,000 invocations of normal and
# hostile guests against one server; STORM_N, STORM_SEED, STORM_CONNS override.
storm: deps
	@$(MAKE) -s tests
	@KILN_BUILD=$(abspath $(BUILD)) KILN=$(abspath $(BUILD))/kiln \
	    KILN_HOME=$(abspath $(BUILD))/test-home KILN_ROOT=$(CURDIR) \
	    STORM_N=$${STORM_N:-1000000} sh tests/stress/storm.sh

bench: deps
	@$(MAKE) -s all
	@sh bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(DEPS) $(FUZZ_LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d)
$(BUILD)/obj/src/aot/toolchain.o: $(BUILD)/gen/descriptor_h.inc
