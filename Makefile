# vramspy build. `make` builds build/libvramspy.so; `make test` builds and runs every test;
# `make bench` runs the benchmarks; `make SANITIZER=address|undefined|thread test` builds into a
# separate tree (build/san-$(SANITIZER)) so instrumented and plain objects never mix.
# Run as root, `make` installs the Debian packages it needs; otherwise it prints the apt-get line.
# `make WERROR=1 ...` turns the project's own compiler warnings into errors (CI builds so).

PREFIX ?= /usr/local
DESTDIR ?=
CUDA_HOME ?= /usr/local/cuda
CC ?= cc
SANITIZER ?=
WERROR ?=

ifeq ($(SANITIZER),)
BUILD := build
SANFLAGS :=
else ifeq ($(SANITIZER),address)
BUILD := build/san-address
SANFLAGS := -fsanitize=address -fno-omit-frame-pointer
else ifeq ($(SANITIZER),undefined)
BUILD := build/san-undefined
SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=all
else ifeq ($(SANITIZER),thread)
BUILD := build/san-thread
SANFLAGS := -fsanitize=thread
else
$(error SANITIZER must be address, undefined or thread (got "$(SANITIZER)"))
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

DEB_PACKAGES := libcriterion-dev libjansson-dev libdw-dev libelf-dev libunwind-dev pkg-config
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
ifeq ($(WERROR),1)
WERRORFLAG := -Werror
else ifeq ($(WERROR),)
WERRORFLAG :=
else ifeq ($(WERROR),0)
WERRORFLAG :=
else
$(error WERROR must be 1 or 0 (got "$(WERROR)"))
endif
WARN += $(WERRORFLAG)
CFLAGS_COMMON := -std=gnu11 -O2 -g $(WARN) -Iinclude -I$(CUDA_HOME)/include -MMD -MP $(SANFLAGS)
SHIM_CFLAGS := $(CFLAGS_COMMON) -fPIC -fvisibility=hidden
# The shim walks stacks with its own unwinder (shim/walk/walker.c): no run-time dependency beyond libc.
# (libunwind-dev stays among the packages: the walker's comparison test links libunwind.)
SHIM_LIBS := -ldl -lpthread
# Start-up of every process under LD_PRELOAD (docs/PERFORMANCE.md): one read-only+code segment
# instead of two (one mmap and its page faults fewer), and relative relocations packed (DT_RELR,
# glibc 2.36) where the linker knows how.
SHIM_LDFLAGS := -Wl,-z,noseparate-code
# Nor the C start files (crti, crtbegin, crtend, crtn): their _init, _fini and frame_dummy sit on
# pages of their own, each one more page touched at start-up and exit by every process (issue 22:
# about 60 us of the start-up cost here). The constructor and destructor run from .init_array and
# .fini_array all the same; core.c defines the __dso_handle that atexit needs, and -z nodelete
# keeps the library from being unloaded under a handler it registered.
SHIM_LDFLAGS += -nostartfiles -Wl,-z,nodelete
# Lazy binding (no -z now): with -z now the loader looked up all of the shim's ~75 libc imports in
# every process at start-up, most of them for code that runs only once CUDA is used (opening the
# trace, the drainer), or never: about 55,000 of the 77,000 instructions the shim added to the start
# of /bin/true (callgrind), 1.8x an empty preloaded library's cost against 1.4x lazily (issue 22).
# The hook-to-ring path calls no libc function, and the loader's lazy fixup takes no lock.
ifneq ($(shell $(CC) -Wl,-z,pack-relative-relocs -shared -o /dev/null -x c /dev/null 2>&1),)
else
SHIM_LDFLAGS += -Wl,-z,pack-relative-relocs
endif

SHIM_SRCS := shim/record/core.c shim/common/config.c shim/base/ring.c shim/base/stackstore.c shim/base/livetable.c shim/base/tcount.c shim/base/clock.c \
             shim/record/trace.c shim/walk/unwind.c shim/inproc/oom.c shim/inproc/metrics.c shim/inproc/labels.c shim/common/purposes.c shim/walk/pyframes.c shim/inproc/pools.c shim/inproc/usage.c shim/hooks/hooks_dl.c shim/hooks/hooks_exit.c shim/hooks/hooks_lookup.c shim/hooks/hooks_runtime.c shim/hooks/hooks_driver.c shim/walk/walker.c \
             shim/base/coldstack.c
# Sources include the project's headers by their path from here ("shim/base/ring.h"), so that each
# include names the room it comes from (shim/README.md, report/README.md).
SRC_INC := -I.
SHIM_OBJS := $(SHIM_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/shim/hooks/dlsym_x86_64.o
SHIM := $(BUILD)/libvramspy.so
# The in-process symboliser, loaded by the shim on first need (shim/inproc/symhelper.c): beside the shim.
SYMHELPER := $(BUILD)/libvramspy-sym.so
SYMHELPER_OBJS := $(BUILD)/obj/pic/shim/inproc/symhelper.o $(BUILD)/obj/pic/shim/common/dwframe.o

READER_SRCS := report/read/trace_reader.c
READER_OBJS := $(READER_SRCS:%.c=$(BUILD)/obj/%.o)
REPORT_SRCS := report/main.c report/analyze/analyze.c report/analyze/holders.c report/analyze/symbolize.c shim/common/dwframe.c report/out/output.c report/analyze/suppress.c report/out/formats.c report/analyze/plan.c report/out/job.c \
               report/read/input.c report/analyze/pycode.c
REPORT_OBJS := $(REPORT_SRCS:%.c=$(BUILD)/obj/%.o)
# The shipped holder rules built into the report (report/analyze/holders.c): a report binary copied
# alone (make gpu-bundle once left the file out) must not silently lose them.
HOLDERS_BUILTIN := $(BUILD)/obj/gen/holders_builtin.o
REPORT_OBJS += $(HOLDERS_BUILTIN)
REPORT_LIBS := -ldw -lelf -ljansson -lstdc++

.PHONY: all deps test bench clean install uninstall
all: deps $(SHIM) $(SYMHELPER) $(BUILD)/vramspy-dump $(BUILD)/vramspy-report $(BUILD)/holders.json $(BUILD)/vramspy

# ---- dependencies -----------------------------------------------------------------------
DEPS_STAMP := build/.deps-ok
deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	$(Q)missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) || exit 1; \
	  else \
	    echo "missing packages; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi; \
	if [ ! -f "$(CUDA_HOME)/include/cuda.h" ]; then \
	  echo "no CUDA toolkit headers at $(CUDA_HOME)/include (set CUDA_HOME)" >&2; exit 1; fi
	$(Q)mkdir -p build && touch $@

# The shim alone needs only libc, libdl and the CUDA headers: `make shim` builds it where
# elfutils, jansson and Criterion are absent (a GPU machine without a network, tests/gpu/README.md).
CUDA_STAMP := build/.cuda-headers-ok
$(CUDA_STAMP):
	$(Q)if [ ! -f "$(CUDA_HOME)/include/cuda.h" ]; then \
	  echo "no CUDA toolkit headers at $(CUDA_HOME)/include (set CUDA_HOME)" >&2; exit 1; fi
	$(Q)mkdir -p build && touch $@

.PHONY: shim
shim: $(SHIM)

# ---- the shim -----------------------------------------------------------------------------
# Link-time optimisation across the shim's files: the hook path crosses a dozen small functions in
# as many files (the trace's state, the ring, the clock, the counters, the real-function lookup),
# each a call without it (issue 22: about 30 ns an allocation+free pair).
SHIM_LTO := -flto=auto
$(BUILD)/obj/shim/%.o: shim/%.c | $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(SHIM_CFLAGS) $(SHIM_LTO) $(SRC_INC) -c $< -o $@

$(BUILD)/obj/shim/hooks/dlsym_x86_64.o: shim/hooks/dlsym_x86_64.S
	@mkdir -p $(dir $@)
	$(Q)$(CC) -fPIC -c $< -o $@

$(SHIM): $(SHIM_OBJS) shim/vramspy.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -fPIC $(SANFLAGS) $(SHIM_LTO) -O2 -g $(WARN) -Wl,-soname,libvramspy.so \
	  -Wl,--version-script=shim/vramspy.map -Wl,-z,relro $(SHIM_LDFLAGS) -o $@ $(SHIM_OBJS) $(SHIM_LIBS)

# ---- reader and tools ----------------------------------------------------------------------
$(BUILD)/obj/pic/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(SHIM_CFLAGS) -D_GNU_SOURCE $(SRC_INC) -c $< -o $@

$(SYMHELPER): $(SYMHELPER_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -fPIC $(SANFLAGS) -Wl,-soname,libvramspy-sym.so -Wl,-z,now -Wl,-z,relro -o $@ \
	  $(SYMHELPER_OBJS) -ldw -lelf -lstdc++

$(BUILD)/obj/report/%.o: report/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE $(SRC_INC) -c $< -o $@

# DWARF frames (shim/common/dwframe.c) in the report: built as the report's own sources are
$(BUILD)/obj/shim/common/dwframe.o: shim/common/dwframe.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE $(SRC_INC) -c $< -o $@

$(BUILD)/obj/tools/%.o: tools/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE $(SRC_INC) -c $< -o $@

$(BUILD)/vramspy-dump: $(BUILD)/obj/tools/vramspy-dump.o $(READER_OBJS)
	$(Q)$(CC) $(SANFLAGS) -o $@ $^

# the front-end (vramspy run|report|top); make gpu-bundle links the same list
FRONTEND_OBJS := $(BUILD)/obj/tools/vramspy.o $(BUILD)/obj/tools/top.o $(BUILD)/obj/report/analyze/analyze.o \
                 $(BUILD)/obj/report/analyze/pycode.o $(BUILD)/obj/report/analyze/symbolize.o $(BUILD)/obj/shim/common/dwframe.o \
                 $(BUILD)/obj/report/out/output.o $(READER_OBJS) $(BUILD)/obj/shim/common/purposes.o
$(BUILD)/vramspy: $(FRONTEND_OBJS)
	$(Q)$(CC) $(SANFLAGS) -o $@ $^ $(REPORT_LIBS)

$(BUILD)/vramspy-report: $(REPORT_OBJS) $(READER_OBJS) $(BUILD)/obj/shim/common/config.o $(BUILD)/obj/shim/common/purposes.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SANFLAGS) -o $@ $^ $(REPORT_LIBS)

# the shipped holder rules, where vramspy-report looks for them in the build tree (beside it)
$(BUILD)/holders.json: report/holders.json
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

# ...and built into it: report/holders.json as a C array, written with od and sed (POSIX; xxd is
# not on a fresh Debian), NUL-terminated; its length without the NUL beside it. Declared in
# report/analyze/holders.h, which the generated file includes so that the two cannot disagree.
$(BUILD)/gen/holders_builtin.c: report/holders.json
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q){ echo "/* Generated by the Makefile from report/holders.json: the holder rules built into vramspy-report."; \
	  echo " * Do not edit: edit report/holders.json. */"; \
	  echo '#include "report/analyze/holders.h"'; \
	  echo "const char vsp_holders_builtin[] = {"; \
	  od -A n -v -t x1 $< | sed 's/ *\([0-9a-fA-F][0-9a-fA-F]\)/0x\1,/g'; \
	  echo "0};"; \
	  echo "const size_t vsp_holders_builtin_len = sizeof vsp_holders_builtin - 1;"; } > $@.tmp && mv $@.tmp $@

$(HOLDERS_BUILTIN): $(BUILD)/gen/holders_builtin.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE $(SRC_INC) -c $< -o $@

include tests/tests.mk
include tests/gpu/gpu.mk
include tools/bench.mk
# the rooms' include rules (shim/README.md, report/README.md), checked by every make test
.PHONY: check-layout
check-layout:
	$(Q)tools/check_layout.sh
test: check-layout
# the CUDA test doubles and test programs are the project's own code too (flags from tests.mk)
FAKE_CFLAGS += $(WERRORFLAG)
PROG_CFLAGS += $(WERRORFLAG)

clean:
	rm -rf build

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/vramspy
	install -m 0755 $(SHIM) $(DESTDIR)$(PREFIX)/lib/libvramspy.so
	install -m 0755 $(SYMHELPER) $(DESTDIR)$(PREFIX)/lib/libvramspy-sym.so
	install -m 0755 $(BUILD)/vramspy-dump $(DESTDIR)$(PREFIX)/bin/vramspy-dump
	install -m 0755 $(BUILD)/vramspy-report $(DESTDIR)$(PREFIX)/bin/vramspy-report
	install -m 0755 $(BUILD)/vramspy $(DESTDIR)$(PREFIX)/bin/vramspy
	install -m 0644 include/vramspy/trace_format.h include/vramspy/vramspy.h $(DESTDIR)$(PREFIX)/include/vramspy/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0644 docs/man/vramspy.1 docs/man/vramspy-report.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 docs/man/libvramspy.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -d $(DESTDIR)$(PREFIX)/share/vramspy
	install -m 0644 report/holders.json $(DESTDIR)$(PREFIX)/share/vramspy/holders.json

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libvramspy.so $(DESTDIR)$(PREFIX)/lib/libvramspy-sym.so $(DESTDIR)$(PREFIX)/bin/vramspy-dump \
	  $(DESTDIR)$(PREFIX)/bin/vramspy-report $(DESTDIR)$(PREFIX)/bin/vramspy
	rm -rf $(DESTDIR)$(PREFIX)/include/vramspy
	rm -rf $(DESTDIR)$(PREFIX)/share/vramspy
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/vramspy.1 $(DESTDIR)$(PREFIX)/share/man/man1/vramspy-report.1 \
	  $(DESTDIR)$(PREFIX)/share/man/man7/libvramspy.7

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
