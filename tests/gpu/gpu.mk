# The GPU suite (tests/gpu/README.md), included by the top-level Makefile.
#   make test-gpu                     run it here: skips, saying why, where there is no GPU
#   make gpu-bundle                   build/gpu-bundle: the shim, the report and the front-end with
#                                     the libraries a GPU machine may lack (libdw, libelf, libjansson)
#                                     beside them, holders.json, and the nvcc programs, to carry to a
#                                     GPU machine
#   make test-gpu-analyse GPU_RESULTS=DIR   check what `make test-gpu` left on a machine whose
#                                     report could not run (the shim built there with `make shim`)

GPU_PROGS :=
ifneq ($(wildcard $(NVCC)),)
# built by make test-build too, so that every build with nvcc compiles them
GPU_PROGS := $(T)/gpu/alloc_static $(T)/gpu/alloc_shared $(T)/gpu/bench_async
PROGS += $(GPU_PROGS)
endif

$(T)/gpu/alloc_static: tests/gpu/alloc_families.cu
	@mkdir -p $(dir $@)
	$(Q)$(NVCC) -O2 -g -o $@ $< -lcuda

$(T)/gpu/alloc_shared: tests/gpu/alloc_families.cu
	@mkdir -p $(dir $@)
	$(Q)$(NVCC) -O2 -g -cudart shared -o $@ $< -lcuda

$(T)/gpu/bench_async: tests/gpu/bench_async.cu
	@mkdir -p $(dir $@)
	$(Q)$(NVCC) -O2 -g -o $@ $<

GPU_BUNDLE := build/gpu-bundle
# Libraries every glibc distribution has (the bundle leaves them to the machine): the C library and
# the compression libraries dpkg itself needs.
GPU_BUNDLE_SYSTEM := linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s|libstdc\+\+|libz\.so|liblzma|libbz2|libzstd
# DT_RPATH (not RUNPATH): it also serves the dependencies' own dependencies (libdw's libelf).
GPU_RPATH := -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/lib'

.PHONY: gpu-bundle test-gpu test-gpu-analyse
# The report has the shipped holder rules built in; holders.json beside it, which it reads first
# when present (a packager's override), makes the bundle the build tree's shape.
gpu-bundle: $(SHIM) $(SYMHELPER_OBJS) $(REPORT_OBJS) $(READER_OBJS) $(BUILD)/obj/shim/common/config.o $(BUILD)/obj/shim/common/purposes.o \
            $(FRONTEND_OBJS) $(GPU_PROGS) report/holders.json
	$(Q)rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)/lib $(GPU_BUNDLE)/gpu-bin
	$(Q)cp $(SHIM) $(GPU_BUNDLE)/
	$(Q)cp report/holders.json $(GPU_BUNDLE)/
	$(Q)$(CC) -shared -fPIC -Wl,-soname,libvramspy-sym.so -Wl,-z,now -o $(GPU_BUNDLE)/libvramspy-sym.so \
	  $(SYMHELPER_OBJS) -ldw -lelf -lstdc++ $(GPU_RPATH)
	$(Q)$(CC) -o $(GPU_BUNDLE)/vramspy-report $(REPORT_OBJS) $(READER_OBJS) $(BUILD)/obj/shim/common/config.o \
	  $(BUILD)/obj/shim/common/purposes.o $(REPORT_LIBS) $(GPU_RPATH)
	$(Q)$(CC) -o $(GPU_BUNDLE)/vramspy $(FRONTEND_OBJS) $(REPORT_LIBS) $(GPU_RPATH)
	$(Q)for l in $$(ldd $(GPU_BUNDLE)/vramspy-report $(GPU_BUNDLE)/vramspy $(GPU_BUNDLE)/libvramspy-sym.so | \
	    awk '$$3 ~ /^\// {print $$3}' | grep -Ev '/($(GPU_BUNDLE_SYSTEM))' | sort -u); do cp -L $$l $(GPU_BUNDLE)/lib/; done
	$(Q)$(if $(GPU_PROGS),cp $(GPU_PROGS) $(GPU_BUNDLE)/gpu-bin/,echo "no nvcc here: the suite builds its programs on the GPU machine")
	@echo "$(GPU_BUNDLE): $$(du -sh $(GPU_BUNDLE) | cut -f1); libraries: $$(ls $(GPU_BUNDLE)/lib | tr '\n' ' ')"

# Skips with its reason (exit 0) where python3 or a GPU is missing; uses build/gpu-bundle when it is
# there (carried), else this build tree, building the shim alone when the report cannot be built.
test-gpu:
	@command -v python3 >/dev/null 2>&1 || { echo "make test-gpu: SKIPPED: no python3 (the suite is tests/gpu/suite.py)"; exit 0; }; \
	why=$$(python3 tests/gpu/suite.py detect) || { echo "make test-gpu: SKIPPED: $$why"; exit 0; }; \
	if [ -z "$$VRAMSPY_GPU_TOOLS" ] && [ ! -f $(GPU_BUNDLE)/libvramspy.so ] && [ ! -f $(SHIM) ]; then \
	  $(MAKE) --no-print-directory shim || exit 2; fi; \
	python3 tests/gpu/suite.py run

test-gpu-analyse: $(BUILD)/vramspy-report
	@test -n "$(GPU_RESULTS)" || { echo "make test-gpu-analyse GPU_RESULTS=DIR (what make test-gpu left)" >&2; exit 2; }
	python3 tests/gpu/suite.py analyse --tools $(BUILD) $(GPU_RESULTS)
