/* Unit tests of configuration parsing (shim/common/config.c): defaults, every variable, and that bad
 * values fall back to defaults with a warning naming the variable. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "shim/common/config.h"
#include "shim/base/ring.h"

static const char *const *vars;

static char *get(const char *name)
{
    for (int i = 0; vars && vars[i]; i += 2)
        if (!strcmp(vars[i], name))
            return (char *)vars[i + 1];
    return NULL;
}

static int parse(struct vsp_config *c, char *warn, size_t len, const char *const *v)
{
    vars = v;
    return vsp_config_parse(c, get, warn, len);
}

Test(config, defaults)
{
    struct vsp_config c;
    char warn[512];
    cr_assert_eq(parse(&c, warn, sizeof warn, NULL), 0);
    cr_assert_str_eq(c.out_pattern, "vramspy.%e.%p.trace");
    cr_assert_eq(c.depth, 64);
    cr_assert_eq(c.quiet, 0);
    cr_assert_eq(c.ring_size, 4u << 20);
    cr_assert_eq(c.on_full, VSP_ON_FULL_WAIT);
    cr_assert_eq(c.clock_coarse, 0, "the precise clock by default");
    cr_assert_str_eq(warn, "");
}

Test(config, every_variable_is_read)
{
    struct vsp_config c;
    char warn[512];
    const char *v[] = {"VRAMSPY_OUT", "/tmp/x.%p", "VRAMSPY_DEPTH", "12", "VRAMSPY_QUIET", "1",
                       "VRAMSPY_RING_SIZE", "100K", "VRAMSPY_ON_FULL", "drop", "VRAMSPY_DEBUG", "yes",
                       "VRAMSPY_DISABLE", "0", "VRAMSPY_CLOCK", "coarse", NULL};
    cr_assert_eq(parse(&c, warn, sizeof warn, v), 0);
    cr_assert_eq(c.clock_coarse, 1);
    cr_assert_str_eq(c.out_pattern, "/tmp/x.%p");
    cr_assert_eq(c.depth, 12);
    cr_assert_eq(c.quiet, 1);
    cr_assert_eq(c.ring_size, 128u << 10, "rounded up to a power of two");
    cr_assert_eq(c.on_full, VSP_ON_FULL_DROP);
    cr_assert_eq(c.debug, 1);
}

Test(config, garbage_values_warn_and_keep_defaults)
{
    struct vsp_config c;
    char warn[1024];
    const char *v[] = {"VRAMSPY_DEPTH", "lots", "VRAMSPY_RING_SIZE", "1K", "VRAMSPY_ON_FULL", "maybe",
                       "VRAMSPY_OUT", "/tmp/%q", "VRAMSPY_CLOCK", "Coarse", NULL};
    cr_assert_eq(parse(&c, warn, sizeof warn, v), 5);
    cr_assert_eq(c.clock_coarse, 0);
    cr_assert_not_null(strstr(warn, "VRAMSPY_CLOCK=Coarse"));
    cr_assert_eq(c.depth, 64);
    cr_assert_eq(c.ring_size, 4u << 20);
    cr_assert_eq(c.on_full, VSP_ON_FULL_WAIT);
    cr_assert_str_eq(c.out_pattern, "vramspy.%e.%p.trace");
    cr_assert_not_null(strstr(warn, "VRAMSPY_DEPTH=lots"));
    cr_assert_not_null(strstr(warn, "VRAMSPY_RING_SIZE=1K"));
    cr_assert_not_null(strstr(warn, "VRAMSPY_ON_FULL=maybe"));
    /* VRAMSPY_OUT is warned about by the trace writer, which knows the path it used instead */
    cr_assert_null(strstr(warn, "VRAMSPY_OUT"));
    cr_assert_str_eq(c.out_bad, "/tmp/%q");
    const char *v2[] = {"VRAMSPY_DEPTH", "257", NULL};
    cr_assert_eq(parse(&c, warn, sizeof warn, v2), 1);
    const char *v3[] = {"VRAMSPY_DEPTH", "-3", NULL};
    cr_assert_eq(parse(&c, warn, sizeof warn, v3), 1);
    const char *v4[] = {"VRAMSPY_DEPTH", "0", NULL};
    cr_assert_eq(parse(&c, warn, sizeof warn, v4), 0);
    cr_assert_eq(c.depth, 0);
}

Test(config, sizes)
{
    uint64_t v;
    cr_assert_eq(vsp_parse_size("4096", &v), 0);
    cr_assert_eq(v, 4096);
    cr_assert_eq(vsp_parse_size("8M", &v), 0);
    cr_assert_eq(v, 8u << 20);
    cr_assert_eq(vsp_parse_size("2GiB", &v), 0);
    cr_assert_eq(v, 2ull << 30);
    cr_assert_eq(vsp_parse_size("3KB", &v), 0);
    cr_assert_eq(v, 3000);
    cr_assert_eq(vsp_parse_size("1.5G", &v), -EINVAL);
    cr_assert_eq(vsp_parse_size("", &v), -EINVAL);
    cr_assert_eq(vsp_parse_size("99999999999999999999", &v), -ERANGE);
    cr_assert_eq(vsp_parse_size("99999999999999G", &v), -ERANGE);
}

Test(config, path_patterns)
{
    char out[64];
    cr_assert_eq(vsp_expand_pattern("vramspy.%e.%p.trace", 42, "worker", out, sizeof out), 0);
    cr_assert_str_eq(out, "vramspy.worker.42.trace");
    cr_assert_eq(vsp_expand_pattern("100%%-%p", 7, "x", out, sizeof out), 0);
    cr_assert_str_eq(out, "100%-7");
    cr_assert_eq(vsp_expand_pattern("bad%", 7, "x", out, sizeof out), -EINVAL);
    cr_assert_eq(vsp_expand_pattern("%e%e%e%e%e%e%e%e%e%e", 7, "abcdefghij", out, sizeof out), -ENAMETOOLONG);
}

Test(config, over_long_values_are_shortened_in_one_warning_line)
{
    struct vsp_config c;
    char warn[1024], big[5001];
    memset(big, 'x', 5000);
    big[5000] = 0;
    const char *v[] = {"VRAMSPY_OUT", big, "VRAMSPY_DEPTH", big, NULL};
    cr_assert_eq(parse(&c, warn, sizeof warn, v), 2);
    cr_assert_str_eq(c.out_pattern, "vramspy.%e.%p.trace");
    cr_assert_not_null(strstr(c.out_bad, "(5000 characters)"), "%s", c.out_bad);
    cr_assert_not_null(strstr(warn, "VRAMSPY_DEPTH=xxx"), "%s", warn);
    cr_assert_not_null(strstr(warn, "(5000 characters) is not a frame count"), "%s", warn);
    cr_assert_eq(strchr(warn, '\n') - warn + 1, (long)strlen(warn), "one line: %s", warn);
}

static int getter_calls;
static char *counting_get(const char *name)
{
    getter_calls++;
    return get(name);
}

Test(config, secure_process_reads_no_variable_and_passes_everything_through)
{
    struct vsp_config c;
    char warn[512];
    vars = (const char *const[]){"VRAMSPY_OUT", "/etc/evil", "VRAMSPY_METRICS", "/etc/m", "VRAMSPY_DEPTH", "x", NULL};
    getter_calls = 0;
    cr_assert_eq(vsp_config_load(&c, counting_get, 1, warn, sizeof warn), 0);
    cr_assert_eq(getter_calls, 0, "an AT_SECURE process must not read VRAMSPY_*");
    cr_assert_eq(c.disabled, 1);
    cr_assert_eq(c.secure, 1);
    cr_assert_str_eq(c.metrics_pattern, "");
    cr_assert_str_eq(c.purposes_path, "");
    cr_assert_str_eq(warn, "");
    cr_assert_eq(vsp_config_load(&c, counting_get, 0, warn, sizeof warn), 1);
    cr_assert_gt(getter_calls, 0);
    cr_assert_eq(c.disabled, 0);
    cr_assert_str_eq(c.out_pattern, "/etc/evil");
}
