# Tests: the CUDA test doubles, the test programs, and one Criterion binary with every test
# (unit tests of the shim's core + integration tests that preload the build-tree shim).
# Included by the top-level Makefile; BUILD, CC, CFLAGS_COMMON and SANFLAGS come from there.

T := $(BUILD)/tests
NVCC ?= $(CUDA_HOME)/bin/nvcc
NV_CUDART := $(wildcard $(CUDA_HOME)/lib64/libcudart.so.13)
FAKE_CFLAGS := -std=gnu11 -O2 -g -fPIC -Wall -Wextra -Wno-unused-parameter -I$(CUDA_HOME)/include
PROG_CFLAGS := -std=gnu11 -O1 -g -fno-omit-frame-pointer -Wall -Wno-deprecated-declarations -I$(CUDA_HOME)/include

ifneq ($(SANITIZER),)
SAN_RUNTIME := $(shell $(CC) -print-file-name=lib$(patsubst address,asan,$(patsubst undefined,ubsan,$(patsubst thread,tsan,$(SANITIZER)))).so)
SAN_DEF := -DVSP_SAN_RUNTIME='"$(SAN_RUNTIME)"'
endif

FAKES := $(T)/fakes/libcuda.so.1 $(T)/fakes/libcudart.so.13 $(T)/fakes/nvml/libnvidia-ml.so.1 $(T)/fakes/libcudart.so.12
PROGS := $(T)/progs/prog_driver_linked $(T)/progs/prog_runtime $(T)/progs/prog_storm $(T)/progs/prog_die $(T)/progs/prog_fork \
         $(T)/progs/prog_driver $(T)/progs/prog_entry $(T)/progs/prog_ctor $(T)/progs/prog_labels
# memory plans and job views (test_plan.c, test_job.c): a labelled worker and its launcher
PROGS += $(T)/progs/prog_plan
# NVIDIA's growable vector on the driver API (test_report_vmm.c)
PROGS += $(T)/progs/prog_vmm_vector
# hostile process shapes (issue #20): a self-sandboxing worker, exec after CUDA, a jump out of a
# blocked free, small stacks
PROGS += $(T)/progs/prog_sandbox $(T)/progs/prog_fork_loader $(T)/progs/prog_exec $(T)/progs/prog_longjmp $(T)/progs/prog_stack
# an interpreter that exports CPython's API but is laid out otherwise (test_pyframes.c)
PROGS += $(T)/progs/prog_fakepython
# process shapes (test_shim_shapes.c): plugins loaded RTLD_LOCAL, two runtimes, unloading, setuid
PROGS += $(T)/progs/prog_shapes $(T)/progs/prog_blockfree $(T)/progs/prog_two_runtimes \
         $(T)/progs/prog_plugin_reload $(T)/progs/prog_secure \
         $(T)/progs/libplug13.so $(T)/progs/libplug12.so $(T)/progs/libplug_drv.so $(T)/progs/libpythread.so $(T)/progs/libcounter.so $(T)/progs/libexit_spy.so $(T)/progs/prog_exit_needed
# framework-held memory, growth and pool caching (test_holders.c)
PROGS += $(T)/progs/prog_holders $(T)/progs/cublas/libcublas.so.13 $(T)/progs/prog_growth $(T)/progs/prog_pool_cache
# the walk memo's stacks (test_walker.c): sibling sites at changing depths, two threads
PROGS += $(T)/progs/prog_sites
ifneq ($(NV_CUDART),)
PROGS += $(T)/progs/prog_runtime_nv
endif
ifneq ($(wildcard $(NVCC)),)
PROGS += $(T)/progs/prog_static
endif

# The in-process symboliser present beside a copy of the shim but unloadable (a dependency missing,
# as libdw.so.1 was on the GPU machine): test_shim_runtime.c's symboliser load test.
SYMBROKEN := $(T)/symbroken/libvramspy.so $(T)/symbroken/libvramspy-sym.so
PROGS += $(SYMBROKEN)

$(T)/symbroken/gone/libvsp_gone.so.1: tests/progs/libsym_broken.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -DVSP_GONE -fPIC -shared -Wl,-soname,libvsp_gone.so.1 -o $@ $<

$(T)/symbroken/libvramspy-sym.so: tests/progs/libsym_broken.c $(T)/symbroken/gone/libvsp_gone.so.1
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -Wl,--no-as-needed $(T)/symbroken/gone/libvsp_gone.so.1

$(T)/symbroken/libvramspy.so: $(SHIM)
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

TEST_SRCS := $(sort $(wildcard tests/test_*.c)) tests/harness.c
UNIT_SHIM_SRCS := shim/common/config.c shim/base/ring.c shim/base/stackstore.c shim/base/livetable.c shim/base/tcount.c shim/base/clock.c shim/common/purposes.c

# The stack walker (shim/walk/walker.c, tests/test_walker.c): unit-tested in process, and compared with
# libunwind by programs that link it, C and C++, built -O0 with frame pointers and -O2 without,
# each with a shared library (and one without unwind tables) on its stacks.
# `$(T)/progs/walkcmp_c_O2 bench 35 200000` times both walkers (ns per walk at depth ~35).
UNIT_SHIM_SRCS += shim/walk/walker.c
WALKCMP := $(T)/progs/walkcmp_c_O0 $(T)/progs/walkcmp_c_O2 $(T)/progs/walkcmp_cpp_O0 $(T)/progs/walkcmp_cpp_O2
PROGS += $(WALKCMP)
WALKCMP_OPT_O0 := -O0 -fno-omit-frame-pointer
WALKCMP_OPT_O2 := -O2 -fomit-frame-pointer
WALKCMP_CFLAGS := -g -Wall -Wextra -Wshadow -Wno-unused-parameter $(WERRORFLAG)
WALKCMP_LIBS = -L$(T)/progs -l:libwalkcmp_$*.so -Wl,-rpath,$(abspath $(T)/progs) -lunwind -ldl -lpthread

$(T)/progs/walker.o: shim/walk/walker.c shim/walk/walker.h shim/base/atomic.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 $(WALKCMP_CFLAGS) -fPIC -fvisibility=hidden $(SRC_INC) -c $< -o $@

$(T)/progs/libwalkcmp_O0.so $(T)/progs/libwalkcmp_O2.so: $(T)/progs/libwalkcmp_%.so: tests/progs/libwalkcmp.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 $(WALKCMP_OPT_$*) $(WALKCMP_CFLAGS) -fPIC -shared -o $@ $<

$(T)/progs/libwalkcmp_nocfi.so: tests/progs/libwalkcmp_nocfi.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O0 -fno-omit-frame-pointer -fno-asynchronous-unwind-tables -fno-unwind-tables \
	  $(WALKCMP_CFLAGS) -fPIC -shared -o $@ $<

$(T)/progs/walkcmp_c_O0 $(T)/progs/walkcmp_c_O2: $(T)/progs/walkcmp_c_%: tests/progs/walkcmp.c tests/progs/walkcmp.h \
  $(T)/progs/walker.o $(T)/progs/libwalkcmp_%.so $(T)/progs/libwalkcmp_nocfi.so
	$(Q)$(CC) -std=gnu11 $(WALKCMP_OPT_$*) $(WALKCMP_CFLAGS) $(SRC_INC) -o $@ $< $(T)/progs/walker.o \
	  -l:libwalkcmp_nocfi.so $(WALKCMP_LIBS)

$(T)/progs/walkcmp_cpp_O0 $(T)/progs/walkcmp_cpp_O2: $(T)/progs/walkcmp_cpp_%: tests/progs/walkcmp_cpp.cc \
  tests/progs/walkcmp.h $(T)/progs/walker.o $(T)/progs/libwalkcmp_%.so
	$(Q)$(CXX) -std=gnu++17 $(WALKCMP_OPT_$*) $(WALKCMP_CFLAGS) $(SRC_INC) -o $@ $< $(T)/progs/walker.o $(WALKCMP_LIBS)

# Walker shapes (tests/test_walker.c, tests/test_walker_shapes.c; issues 20 and 22): a program that
# protects its own unwind tables, a coroutine, many identical libraries (one library copied
# MANY_LIBS times with tee, one process: the loader tells copies apart by inode), and two builds of
# one assembly function with different frames.
MANY_LIBS := 2100
PROGS += $(T)/progs/prog_eh_protect $(T)/progs/prog_coroutine $(T)/progs/prog_many_libs $(T)/progs/many/.stamp \
         $(T)/progs/libgen_a.so $(T)/progs/libgen_b.so

$(T)/progs/libmany.so: tests/progs/libmany.c tests/progs/many.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -fomit-frame-pointer -g -Wall -Wextra -fPIC -shared -o $@ $<

$(T)/progs/many/.stamp: $(T)/progs/libmany.so
	@mkdir -p $(dir $@)
	$(Q)tee $(shell seq -f "$(T)/progs/many/libmany_%04g.so" 0 $$(($(MANY_LIBS) - 1))) < $< > /dev/null
	@touch $@

$(T)/progs/libgen_a.so $(T)/progs/libgen_b.so: $(T)/progs/libgen_%.so: tests/progs/libgen.S
	@mkdir -p $(dir $@)
	$(Q)$(CC) -DGEN_FRAME=$(if $(filter a,$*),8,56) -fPIC -shared -nostdlib -o $@ $<

TEST_BIN := $(T)/vsp_tests

$(T)/fakes/libcuda.so.1: tests/fakes/fake_cuda.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(FAKE_CFLAGS) -shared -Wl,-soname,libcuda.so.1 -o $@ $< -lpthread

# The fake NVML sits in a directory of its own: only tests that put it on LD_LIBRARY_PATH get it.
$(T)/fakes/nvml/libnvidia-ml.so.1: tests/fakes/fake_nvml.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(FAKE_CFLAGS) -shared -Wl,-soname,libnvidia-ml.so.1 -o $@ $< -ldl

$(T)/fakes/libcudart.so.13: tests/fakes/fake_cudart.c tests/fakes/fake_cudart.map
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(FAKE_CFLAGS) -shared -Wl,-soname,libcudart.so.13 \
	  -Wl,--version-script=tests/fakes/fake_cudart.map -Wl,-Bsymbolic -o $@ $< -ldl -lpthread

# A second runtime (CUDA 12.8's soname and version node) from the same source, for two runtimes
# in one process.
$(T)/fakes/libcudart.so.12: tests/fakes/fake_cudart.c tests/fakes/fake_cudart12.map
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(FAKE_CFLAGS) -DFAKE_RUNTIME_VERSION=12080 -shared -Wl,-soname,libcudart.so.12 \
	  -Wl,--version-script=tests/fakes/fake_cudart12.map -Wl,-Bsymbolic -o $@ $< -ldl -lpthread

# CUDA plugins (loaded with dlopen / ctypes by the shape tests): one source, one per runtime.
$(T)/progs/libplug13.so: tests/progs/libplug.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -L$(T)/fakes -l:libcudart.so.13

$(T)/progs/libplug12.so: tests/progs/libplug.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -L$(T)/fakes -l:libcudart.so.12

# A library named libcublas.so.13, in a directory of its own (only test_holders puts it on the path)
$(T)/progs/cublas/libcublas.so.13: tests/progs/libcublas_fake.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -Wl,-soname,libcublas.so.13 -o $@ $< -L$(T)/fakes -l:libcudart.so.13

$(T)/progs/prog_holders: tests/progs/prog_holders.cc $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) -std=gnu++17 -O1 -g -fno-omit-frame-pointer -Wall -I$(CUDA_HOME)/include $(WERRORFLAG) -o $@ $< \
	  -L$(T)/fakes -l:libcudart.so.13 -ldl

$(T)/progs/libpythread.so: tests/progs/libpythread.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -L$(T)/fakes -l:libcudart.so.13 -lpthread

$(T)/progs/libexit_spy.so: tests/progs/libexit_spy.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -ldl

$(T)/progs/prog_exit_needed: tests/progs/prog_exit_needed.c $(T)/progs/libexit_spy.so
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -L$(T)/progs -l:libexit_spy.so -Wl,-rpath,'$$ORIGIN'

$(T)/progs/libcounter.so: tests/progs/libcounter.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -ldl

$(T)/progs/libplug_drv.so: tests/progs/libplug_drv.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -L$(T)/fakes -l:libcuda.so.1

# Plugin hosts: no CUDA library of their own.
$(T)/progs/prog_two_runtimes: tests/progs/prog_two_runtimes.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -ldl

$(T)/progs/prog_plugin_reload: tests/progs/prog_plugin_reload.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -ldl

# The shim as a DT_NEEDED library with absolute RPATHs: secure mode (setuid) ignores LD_PRELOAD and
# LD_LIBRARY_PATH but honours these (what /etc/ld.so.preload amounts to). DT_RPATH, not RUNPATH:
# the executable's RPATH also serves the runtime's dlopen("libcuda.so.1").
$(T)/progs/prog_secure: tests/progs/prog_secure.c $(SHIM) $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -Wl,--no-as-needed $(abspath $(SHIM)) -L$(T)/fakes -l:libcudart.so.13 \
	  -Wl,--disable-new-dtags -Wl,-rpath,$(abspath $(BUILD)):$(abspath $(T)/fakes)

$(T)/progs/libctor.so: tests/progs/libctor.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $< -L$(T)/fakes -l:libcudart.so.13

$(T)/progs/prog_ctor: tests/progs/prog_ctor.c $(T)/progs/libctor.so
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -L$(T)/progs -lctor

$(T)/progs/prog_driver_linked: tests/progs/prog_driver_linked.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -L$(T)/fakes -l:libcuda.so.1

$(T)/progs/prog_vmm_vector: tests/progs/prog_vmm_vector.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -L$(T)/fakes -l:libcuda.so.1

$(T)/progs/prog_driver: tests/progs/prog_driver.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -ldl

$(T)/progs/prog_runtime_nv: tests/progs/prog_runtime.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -o $@ $< -L$(CUDA_HOME)/lib64 -l:libcudart.so.13 -Wl,-rpath,$(CUDA_HOME)/lib64

$(T)/progs/prog_static: tests/progs/prog_static.cu
	@mkdir -p $(dir $@)
	$(Q)$(NVCC) -o $@ $<

$(T)/progs/prog_fakepython: tests/progs/prog_fakepython.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -rdynamic -o $@ $< -L$(T)/fakes -l:libcudart.so.13

$(T)/progs/%: tests/progs/%.c $(FAKES)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(PROG_CFLAGS) -Iinclude -o $@ $< -L$(T)/fakes -l:libcudart.so.13 -lpthread

# Criterion cannot start under ThreadSanitizer (its inheritable arena mmap fails), so with
# SANITIZER=thread the test binary itself is plain, the preloaded shim is instrumented, and the
# core's concurrent data structures get their own instrumented stress program (tsan_stress).
ifeq ($(SANITIZER),thread)
TEST_CFLAGS := $(filter-out $(SANFLAGS),$(CFLAGS_COMMON))
TSAN_STRESS := $(T)/tsan_stress
else
TEST_CFLAGS := $(CFLAGS_COMMON)
TSAN_STRESS :=
endif

$(T)/tsan_stress: tests/tsan_stress.c $(UNIT_SHIM_SRCS) $(READER_SRCS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_COMMON) -D_GNU_SOURCE $(SRC_INC) -Itests -o $@ $^ -lpthread

$(TEST_BIN): $(TEST_SRCS) $(UNIT_SHIM_SRCS) $(READER_SRCS) tests/harness.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(TEST_CFLAGS) -D_GNU_SOURCE $(SRC_INC) -Itests -DVSP_BUILD_DIR='"$(abspath $(BUILD))"' \
	  -DVSP_SOURCE_DIR='"$(abspath .)"' $(SAN_DEF) -o $@ $(TEST_SRCS) $(UNIT_SHIM_SRCS) $(READER_SRCS) \
	  -lcriterion -ljansson -lutil -lpthread -lm

.PHONY: test test-build
test-build: $(SHIM) $(SYMHELPER) $(BUILD)/vramspy-dump $(BUILD)/vramspy-report $(BUILD)/holders.json $(BUILD)/vramspy $(FAKES) $(PROGS) $(TEST_BIN) $(TSAN_STRESS)

# --jobs 2: this is a 2-core machine; the storm test alone keeps 8 threads busy.
test: test-build
	$(if $(TSAN_STRESS),$(TSAN_STRESS))
	$(TEST_BIN) --jobs 2 $(TEST_ARGS)

# make golden: regenerate the golden traces and their expected reports (review the diff!).
$(T)/golden_gen: tests/golden_gen.c shim/base/ring.c shim/base/tcount.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O1 -g -Iinclude $(SRC_INC) -Itests -o $@ $^ -lpthread

.PHONY: golden
golden: $(T)/golden_gen $(BUILD)/vramspy-report
	$(T)/golden_gen tests/data
	for t in tests/data/*.trace; do $(BUILD)/vramspy-report --format json $$t > $${t%.trace}.json; done
