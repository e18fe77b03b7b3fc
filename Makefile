# Kiln build. `make run` and `make test` are the two entry points the README
# documents; both install missing Debian packages first.
#
# Sources are discovered per folder; adding a .c file to src/<module>/ adds it
# to libkiln. Generated artifacts live only under build/.

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
KCFLAGS  := -std=c11 -D_GNU_SOURCE -fvisibility=hidden -fno-strict-aliasing -Iinclude -Isrc \
            -I$(BUILD)/gen $(WARN) $(CFLAGS)
# Artifacts (.so) resolve wasm_rt_* against the kiln executable.
LDEXPORT := -Wl,--export-dynamic-symbol=wasm_rt_*
LIBS     := -lmicrohttpd -lcurl -lyaml -lcrypto -ljansson -lsqlite3 -lm -lpthread -ldl -lrt

LIB_SRC  := $(wildcard src/base/*.c src/platform/*.c src/runtime/*.c src/aot/*.c src/http/*.c \
                       src/config/*.c src/store/*.c src/net/*.c \
                       src/abi/*.c src/abi/*/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

.PHONY: all deps run test tests bench clean examples
all: $(BUILD)/kiln

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

$(BUILD)/libkiln.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kiln: $(CLI_OBJ) $(BUILD)/libkiln.a
	$(CC) $(LDEXPORT) -o $@ $(CLI_OBJ) $(BUILD)/libkiln.a $(LIBS)

# Test programs: every tests/unit/test_*.c is one cmocka binary; tests/tools/*.c
# are harnesses (spec runner, stress test). All link the static library.
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -Itests $(LDEXPORT) -o $@ $< $(BUILD)/libkiln.a -lcmocka $(LIBS)
$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -Itests $(LDEXPORT) -o $@ $< $(BUILD)/libkiln.a $(LIBS)

tests: $(BUILD)/kiln $(UNIT_BIN) $(TOOL_BIN)

examples: $(BUILD)/kiln
	@$(MAKE) -s -C examples BUILD=$(abspath $(BUILD))/examples

# One command: install, build, run the bundled examples.
run: deps
	@$(MAKE) -s all examples
	@sh scripts/run-examples.sh $(BUILD)

# One command: install, build, run every test; ends with "N passed, N failed".
test: deps
	@$(MAKE) -s tests
	@sh tests/run.sh $(BUILD)

bench: deps
	@$(MAKE) -s all
	@sh bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(DEPS)
$(BUILD)/obj/src/aot/toolchain.o: $(BUILD)/gen/descriptor_h.inc
