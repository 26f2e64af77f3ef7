# make bench: benchmarks (not part of make test). See tools/bench.sh and docs/PERFORMANCE.md.
# The measured block goes into a copy of docs/PERFORMANCE.md, $(BUILD)/PERFORMANCE.md: a tracked file
# is rewritten only when asked (make bench BENCH_DOC=1 updates docs/PERFORMANCE.md itself).
BENCH_DOC ?= 0
ifeq ($(BENCH_DOC),1)
BENCH_DOC_OUT := docs/PERFORMANCE.md
else ifeq ($(BENCH_DOC),0)
BENCH_DOC_OUT := $(BUILD)/PERFORMANCE.md
else
$(error BENCH_DOC must be 1 or 0 (got "$(BENCH_DOC)"))
endif
$(BUILD)/tools/bench_calls: tools/bench_calls.c $(T)/fakes/libcudart.so.13
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -fno-omit-frame-pointer $(WARN) -I$(CUDA_HOME)/include -o $@ $< \
	  -L$(T)/fakes -l:libcudart.so.13

$(BUILD)/tools/bench_pairs: tools/bench_pairs.c tools/bench_pair.h $(T)/fakes/libcudart.so.13
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -fno-omit-frame-pointer $(WARN) -I$(CUDA_HOME)/include -o $@ $< \
	  -L$(T)/fakes -l:libcudart.so.13 -lpthread

$(BUILD)/tools/bench_startup: tools/bench_startup.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 $(WARN) -o $@ $<

.PHONY: bench
# BENCH_PARTS (tools/bench.sh) runs only some parts: their block is not the whole one the document holds.
ifneq ($(strip $(BENCH_PARTS)),)
ifeq ($(BENCH_DOC),1)
$(error BENCH_DOC=1 writes the whole block into docs/PERFORMANCE.md: run it without BENCH_PARTS)
endif
endif
bench: $(SHIM) $(BUILD)/vramspy-dump $(FAKES) $(BUILD)/tools/bench_calls $(BUILD)/tools/bench_startup \
       $(BUILD)/tools/bench_pairs $(T)/progs/prog_storm
	bash -o pipefail -c "tools/bench.sh $(BUILD) | tee $(BUILD)/bench.txt"
	tools/bench_doc.sh $(BUILD)/bench.txt docs/PERFORMANCE.md $(BENCH_DOC_OUT)

# make demo: the README's first command. Builds everything it uses (the shim, its in-process
# symboliser libvramspy-sym.so for the out-of-memory breakdown's names, the front-end, the report,
# the CUDA test doubles, the workload), runs the demo workload under the shim (against the CUDA test
# doubles when there is no GPU), and shows what was recorded.
$(BUILD)/tools/demo_workload: tools/demo_workload.c $(T)/fakes/libcudart.so.13
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O1 -g $(WARN) -I$(CUDA_HOME)/include -o $@ $< -L$(T)/fakes -l:libcudart.so.13

.PHONY: demo
demo: $(SHIM) $(SYMHELPER) $(BUILD)/vramspy $(BUILD)/vramspy-report $(BUILD)/vramspy-dump $(FAKES) \
      $(BUILD)/tools/demo_workload
	tools/demo.sh $(BUILD)

$(BUILD)/tools/bench_report_gen: tools/bench_report_gen.c shim/base/ring.c shim/base/tcount.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 $(WARN) -Iinclude $(SRC_INC) -Itests -o $@ $^ -lpthread

$(BUILD)/tools/bench_ring: tools/bench_ring.c shim/base/ring.c shim/base/tcount.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -D_GNU_SOURCE $(WARN) -Iinclude $(SRC_INC) -Itests -o $@ $^ -lpthread

bench: $(BUILD)/vramspy-report $(BUILD)/tools/bench_report_gen $(BUILD)/tools/bench_ring

# make fuzz: libFuzzer (clang) over the reader, the analysis and the output, seeded with the golden
# traces and a real one; FUZZ_SECONDS bounds the run (default 120).
FUZZ_SECONDS ?= 120
FUZZ_BIN := build/fuzz/fuzz_report
$(FUZZ_BIN): report/fuzz_report.c report/analyze/analyze.c report/analyze/symbolize.c shim/common/dwframe.c report/out/output.c report/out/formats.c report/read/trace_reader.c report/analyze/pycode.c shim/common/purposes.c
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude $(SRC_INC) -I$(CUDA_HOME)/include -o $@ $^ \
	  -ldw -lelf -ljansson -lstdc++

.PHONY: fuzz
fuzz: $(FUZZ_BIN) $(SHIM) $(FAKES) $(T)/progs/prog_runtime $(T)/progs/libpythread.so
	@mkdir -p build/fuzz/corpus build/fuzz/seeds
	cp tests/data/*.trace build/fuzz/seeds/
	rm -f build/fuzz/seeds/real.trace*
	LD_PRELOAD=$(abspath $(SHIM)) LD_LIBRARY_PATH=$(T)/fakes VRAMSPY_QUIET=1 VRAMSPY_RING_SIZE=64K \
	  VRAMSPY_OUT=build/fuzz/seeds/real.trace $(T)/progs/prog_runtime basic > /dev/null
	# a trace with Python frames and PYCODE records (format 4), when there is a python3
	-command -v python3 > /dev/null && LD_PRELOAD=$(abspath $(SHIM)) LD_LIBRARY_PATH=$(T)/fakes VRAMSPY_QUIET=1 \
	  VRAMSPY_RING_SIZE=64K VRAMSPY_OUT=build/fuzz/seeds/real.trace.py python3 tests/progs/pyframes.py ctypes \
	  $(T)/fakes/libcudart.so.13 $(T)/progs/libpythread.so build/fuzz/py-expect.json > /dev/null
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=200000 -timeout=10 -rss_limit_mb=2048 \
	  build/fuzz/corpus build/fuzz/seeds

# The N-library shape (issue 22): copies of tests/progs/libmany.so made by the test build.
$(BUILD)/tools/bench_libs: tools/bench_libs.c tools/bench_pair.h tests/progs/many.h $(T)/fakes/libcudart.so.13
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -fno-omit-frame-pointer $(WARN) -I$(CUDA_HOME)/include -o $@ $< \
	  -L$(T)/fakes -l:libcudart.so.13 -ldl -lpthread

bench: $(BUILD)/tools/bench_libs $(T)/progs/many/.stamp

# Start-up's yardstick: an empty preloaded library.
$(BUILD)/tools/libempty.so: tools/bench_empty.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 $(WARN) -fPIC -shared -o $@ $<

bench: $(BUILD)/tools/libempty.so

# The second harness's control: an interposer that only spins (tools/bench_spin.c, tools/bench_rotate.sh).
$(BUILD)/tools/libbench_spin.so: tools/bench_spin.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 $(WARN) -fPIC -shared -o $@ $< -ldl

bench: $(BUILD)/tools/libbench_spin.so
