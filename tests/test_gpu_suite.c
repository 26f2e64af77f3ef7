/* Tests of the GPU suite (tests/gpu, issue 23) that need no GPU: its checker against the reports of
 * the first H200 run (tests/gpu/test_check.py), the reasons it gives for skipping where there is no
 * usable GPU (exit 0, one line), and that its Python cases compile. The suite itself (make test-gpu)
 * runs only where a GPU is. Skipped where python3 is missing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static void need_python(void)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        cr_skip_test("no python3: the GPU suite and its checker are Python");
}

static void sh(struct run_result *r, const char *cmd)
{
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 0, 1), 0);
}

Test(gpu_suite, checker_passes_what_held_on_the_h200_and_flags_what_broke)
{
    need_python();
    struct run_result r;
    sh(&r, "exec python3 " VSP_SOURCE_DIR "/tests/gpu/test_check.py");
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.err, "\nOK"), "%s", r.err);
}

/* fw_torch.py's raw mode (issue 19 on a GPU: the one leak of a PyTorch process) on the test doubles:
 * its libcudart look-up and ctypes call, and the shim's record of it as the checker wants it (one
 * leak through libffi/_ctypes, no allocator frame; with issue 21, the marked line). */
Test(gpu_suite, raw_cudaMalloc_through_ctypes_is_recorded_as_the_checker_expects, .timeout = 120)
{
    need_python();
    struct run_result r;
    char cmd[9000];
    /* the shim as th_run preloads it (after the sanitizer runtime in a SANITIZER= build) */
    snprintf(cmd, sizeof cmd, "VSP_FAKES='" VSP_FAKES "' LD_LIBRARY_PATH='" VSP_FAKES "' VSP_PRELOAD='%s' VSP_REPORT='"
             VSP_BUILD_DIR "/vramspy-report' exec python3 " VSP_SOURCE_DIR
             "/tests/gpu/test_check.py RawLeakScript RawLeakUnderTheShim",
             TH_PRELOAD_ENV + strlen("LD_PRELOAD="));
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.err, "\nOK"), "%s", r.err);
    cr_assert_null(strstr(r.err, "skipped"), "%s", r.err);
}

Test(gpu_suite, python_cases_compile)
{
    need_python();
    struct run_result r;
    sh(&r, "cd " VSP_SOURCE_DIR "/tests/gpu && exec python3 -c 'import sys; "
           "[compile(open(f).read(), f, \"exec\") for f in sys.argv[1:]]' "
           "suite.py check.py test_check.py fw_torch.py fw_cupy.py fw_jax.py");
    cr_assert_eq(r.code, 0, "%s", r.err);
}

/* A directory with an nvidia-smi that prints `listing` and exits with `status`. */
static const char *fake_smi(const char *listing, int status)
{
    char *dir = th_tmpdir(), path[4200], text[600];
    snprintf(path, sizeof path, "%s/nvidia-smi", dir);
    snprintf(text, sizeof text, "#!/bin/sh\nprintf '%s'\nexit %d\n", listing, status);
    th_write_file(path, text);
    chmod(path, 0755);
    return dir;
}

/* `suite.py run` with PATH and extra environment; it must skip: exit 0, the reason on stdout. */
static void skips(const char *path_env, const char *extra, const char *reason)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "py=$(python3 -c 'import sys; print(sys.executable)'); PATH='%s' %s exec \"$py\" " VSP_SOURCE_DIR
             "/tests/gpu/suite.py run --results '%s/r'",
             path_env, extra, th_tmpdir());
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "make test-gpu: SKIPPED: "), "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, reason), "want \"%s\": %s%s", reason, r.out, r.err);
}

Test(gpu_suite, no_gpu_skips_with_its_reason)
{
    need_python();
    char path[4400];
    /* no driver at all (PATH: an empty directory) */
    skips(th_tmpdir(), "", "no nvidia-smi on PATH");
    /* a driver that sees no GPU */
    snprintf(path, sizeof path, "%s", fake_smi("No devices were found\\n", 6));
    skips(path, "", "nvidia-smi lists no GPU (No devices were found)");
    /* a GPU, hidden */
    snprintf(path, sizeof path, "%s", fake_smi("GPU 0: NVIDIA H200 (UUID: GPU-0)\\n", 0));
    skips(path, "CUDA_VISIBLE_DEVICES=", "CUDA_VISIBLE_DEVICES=\"\" hides every device");
    /* a GPU listed, but the CUDA driver gives none (the test double's cuInit fails: its simulated
     * device cannot be mapped) */
    skips(path, "LD_LIBRARY_PATH=" VSP_FAKES " VSP_FAKE_DEVICE_MEM=100000T",
          "the CUDA driver gives no device: cuInit failed with 2");
}
