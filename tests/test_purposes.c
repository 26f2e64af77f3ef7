/* Unit tests of the purpose rules (shim/common/purposes.c): the JSON reader the shim and the report
 * share — valid JSON in, invalid JSON out with the byte offset — and the matcher's order. */
#include <criterion/criterion.h>
#include <string.h>

#include "shim/common/purposes.h"

static struct vsp_purposes ps;
static char err[256];

static int parse(const char *text)
{
    err[0] = 0;
    return vsp_purposes_parse(text, &ps, err, sizeof err);
}

Test(purposes, both_rule_forms_parse)
{
    cr_assert_eq(parse(" {\"weights\": [\"load_weights*\", \"*safetensors*\"],\n"
                       "  \"kv_cache\": {\"function\": [\"kv::*\"], \"module\": [\"libattn.so*\"]},\n"
                       "  \"empty\": {}, \"none\": []} "), 0, "%s", err);
    cr_assert_eq(ps.n, 4);
    cr_assert_str_eq(ps.p[0].label, "weights");
    cr_assert_eq(ps.p[0].nany, 2);
    cr_assert_str_eq(ps.p[1].function[0], "kv::*");
    cr_assert_str_eq(ps.p[1].module[0], "libattn.so*");
    cr_assert_eq(parse("{}"), 0);
    cr_assert_eq(ps.n, 0);
}

Test(purposes, every_json_escape_is_understood)
{
    cr_assert_eq(parse("{\"a\\u00e9\\/\": [\"x\\\"\\\\\\b\\f\\n\\r\\t\\u0041\"]}"), 0, "%s", err);
    cr_assert_str_eq(ps.p[0].label, "a\xc3\xa9/");
    cr_assert_str_eq(ps.p[0].any[0], "x\"\\\b\f\n\r\tA");
}

Test(purposes, invalid_json_is_refused_with_the_offset)
{
    const char *bad[] = {
        "{\"a\": {\"function\": [\"x\"] \"module\": [\"y\"]}}", /* missing comma */
        "{\"a\": {\"function\": [\"x\"],}}",                    /* trailing comma in an object */
        "{\"a\": [\"x\",]}",                                    /* ... in a list */
        "{\"a\": [\"x\"],}",                                    /* ... at the top */
        "{\"a\": [\"x\"]} trailing",
        "{\"a\": [\"\\q\"]}",                                   /* unknown escape */
        "{\"a\": [\"\\u12\"]}",                                 /* short \u */
        "{\"a\": [\"tab\there\"]}",                             /* raw control character */
        "{\"a\": 3}",
        "{\"a\": {\"path\": [\"x\"]}}",                     /* unknown key */
        "[\"a\"]",
        "{\"a\": [\"x\"]",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(parse(bad[i]), -1, "accepted: %s", bad[i]);
        cr_assert_not_null(strstr(err, "at byte "), "%s -> %s", bad[i], err);
    }
}

Test(purposes, first_matching_rule_wins_and_modules_match_by_base_name)
{
    cr_assert_eq(parse("{\"kv\": {\"function\": [\"kv::*\"]}, \"attn\": {\"module\": [\"libattn.so*\"]},"
                       " \"any\": [\"*grow*\"]}"), 0, "%s", err);
    cr_assert_eq(vsp_purposes_match(&ps, "kv::grow(unsigned long)", "/opt/lib/libattn.so.2"), 0);
    cr_assert_eq(vsp_purposes_match(&ps, "attention_fwd", "/opt/lib/libattn.so.2"), 1);
    cr_assert_eq(vsp_purposes_match(&ps, "grow_blocks", "/usr/bin/worker"), 2);
    cr_assert_eq(vsp_purposes_match(&ps, "main", "/usr/bin/worker"), -1);
    cr_assert_eq(vsp_purposes_match(&ps, NULL, NULL), -1);
}

/* Issue 21: "file" globs match a Python frame's file (path or base name); a plain list matches it
 * too; function globs its qualified name; the shared per-rule matcher (vsp_glob_frame_matches,
 * behind the report's vsp_frame_matches) takes all three. */
Test(purposes, python_frames_match_by_function_and_file)
{
    cr_assert_eq(parse("{\"model\": {\"file\": [\"model.py\"]}, \"train\": [\"*/train/*\"],"
                       " \"step\": {\"function\": [\"Trainer.step\"]}}"),
                 0, "%s", err);
    cr_assert_eq(ps.p[0].nfile, 1);
    cr_assert_eq(vsp_purposes_match_frame(&ps, "Model.load", NULL, "/srv/app/model.py"), 0);
    cr_assert_eq(vsp_purposes_match_frame(&ps, "run", NULL, "/srv/train/loop.py"), 1);
    cr_assert_eq(vsp_purposes_match_frame(&ps, "Trainer.step", NULL, "/srv/x.py"), 2);
    cr_assert_eq(vsp_purposes_match_frame(&ps, "other", NULL, "/srv/x.py"), -1);
    cr_assert_eq(vsp_purposes_match(&ps, "model.py", NULL), -1, "a file glob is not a function glob");
    cr_assert(vsp_glob_frame_matches("Model.*", NULL, "*.py", "Model.load", NULL, "/a/model.py"));
    cr_assert(vsp_glob_frame_matches(NULL, NULL, "model.py", "f", NULL, "/a/model.py"), "base name");
    cr_assert(!vsp_glob_frame_matches("Model.*", NULL, "train.py", "Model.load", NULL, "/a/model.py"));
    cr_assert(!vsp_glob_frame_matches(NULL, "libtorch*", NULL, "f", NULL, "/a/model.py"), "no module");
    cr_assert(vsp_glob_frame_matches(NULL, "libtorch*", NULL, "f", "/usr/lib/libtorch_cuda.so", NULL));
}
