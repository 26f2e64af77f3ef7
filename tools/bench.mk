# make bench: benchmarks (not part of make test). See tools/bench.sh and docs/PERFORMANCE.md.
$(BUILD)/tools/bench_calls: tools/bench_calls.c $(T)/fakes/libcudart.so.13
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -fno-omit-frame-pointer -I$(CUDA_HOME)/include -o $@ $< \
	  -L$(T)/fakes -l:libcudart.so.13

$(BUILD)/tools/bench_startup: tools/bench_startup.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -o $@ $<

.PHONY: bench
bench: $(SHIM) $(BUILD)/vramspy-dump $(FAKES) $(BUILD)/tools/bench_calls $(BUILD)/tools/bench_startup
	tools/bench.sh $(BUILD)

# make demo: the README's first command. Builds everything, runs the demo workload under the shim
# (against the CUDA test doubles when there is no GPU), and shows what was recorded.
$(BUILD)/tools/demo_workload: tools/demo_workload.c $(T)/fakes/libcudart.so.13
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O1 -g -I$(CUDA_HOME)/include -o $@ $< -L$(T)/fakes -l:libcudart.so.13

.PHONY: demo
demo: $(SHIM) $(BUILD)/vramspy-dump $(FAKES) $(BUILD)/tools/demo_workload
	tools/demo.sh $(BUILD)

$(BUILD)/tools/bench_report_gen: tools/bench_report_gen.c shim/ring.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -Iinclude -Ishim -Itests -Ireport -o $@ $^

bench: $(BUILD)/vramspy-report $(BUILD)/tools/bench_report_gen
