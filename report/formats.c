/* Renderings for people and tools (see formats.h). */
#include "formats.h"
#include "output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INLINE 16

void vsp_frame_label(const struct vsp_frame_info *f, char *buf, size_t len)
{
    if (f->function[0]) {
        snprintf(buf, len, "%s", f->function);
    } else if (f->module) {
        const char *b = strrchr(f->module, '/');
        snprintf(buf, len, "%s+0x%" PRIx64, b ? b + 1 : f->module, f->offset);
    } else {
        snprintf(buf, len, "0x%" PRIx64, f->address);
    }
}

static void xml_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, out);
        }
    }
}

/* ---- folded stacks: outer;...;inner;API BYTES ---- */

static void folded_line(FILE *out, const struct vsp_analysis *a, struct vsp_symbolizer *sym, uint32_t stack_id,
                        uint16_t api, uint64_t bytes)
{
    if (!bytes)
        return;
    const struct vsp_stack *st = vsp_analysis_stack(a, stack_id);
    char line[16384];
    size_t used = 0;
    line[0] = 0;
    for (int k = st ? (int)st->nframes - 1 : -1; k >= 0; k--) {
        struct vsp_frame_info fi[MAX_INLINE];
        int n = vsp_sym_frame(sym, st, (unsigned)k, fi, MAX_INLINE);
        for (int j = n - 1; j >= 0; j--) {
            char label[600];
            vsp_frame_label(&fi[j], label, sizeof label);
            for (char *p = label; *p; p++)
                if (*p == ';' || *p == ' ')
                    *p = '_'; /* the format's separators */
            int w = snprintf(line + used, sizeof line - used, "%s;", label);
            if (w < 0 || (size_t)w >= sizeof line - used)
                break;
            used += (size_t)w;
        }
    }
    fprintf(out, "%s%s %" PRIu64 "\n", line, vsp_api_name(api), bytes);
}

void vsp_folded(FILE *out, const struct vsp_analysis *a, struct vsp_symbolizer *sym, int weigh)
{
    if (weigh == VSP_WEIGH_LEAKS) {
        for (size_t i = 0; i < a->nfindings; i++)
            if (a->findings[i].kind == VSP_F_LEAK)
                folded_line(out, a, sym, a->findings[i].stack_id, a->findings[i].api, a->findings[i].bytes);
        return;
    }
    for (size_t i = 0; i < a->nby_stack; i++) {
        const struct vsp_stack_bytes *b = &a->by_stack[i];
        folded_line(out, a, sym, b->stack_id, b->api, weigh == VSP_WEIGH_PEAK ? b->live_at_peak : b->allocated);
    }
}

/* ---- Chrome trace-event JSON ---- */

static const int track_kinds[] = {VSP_MEM_DEVICE, VSP_MEM_MANAGED, VSP_MEM_HOST_PINNED, VSP_MEM_HOST_MAPPED,
                                  VSP_MEM_HOST_REGISTERED, VSP_MEM_ARRAY, VSP_MEM_PHYSICAL};
#define NTRACK (sizeof track_kinds / sizeof track_kinds[0])

void vsp_perfetto_begin(FILE *out)
{
    fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", out);
}

void vsp_perfetto_trace(FILE *out, const struct vsp_analysis *a, int first)
{
    uint64_t t0 = a->nsamples ? a->samples[0].t0 : a->first_time_ns;
    fprintf(out, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"",
            first ? "" : ",\n", a->pid);
    for (const char *p = a->exe ? a->exe : "?"; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            fputc(*p, out);
    fprintf(out, " (%u)\"}}", a->pid);
    for (size_t i = 0; i < a->nsamples; i++) {
        const struct vsp_sample *s = &a->samples[i];
        fprintf(out, ",\n{\"name\":\"live bytes\",\"ph\":\"C\",\"pid\":%u,\"tid\":0,\"ts\":%.3f,\"args\":{", a->pid,
                (double)(s->t0 - t0) / 1000.0);
        for (size_t k = 0; k < NTRACK; k++)
            fprintf(out, "%s\"%s\":%" PRIu64, k ? "," : "", vsp_memory_name((unsigned)track_kinds[k]),
                    s->bytes[track_kinds[k]]);
        fputs("}}", out);
    }
    for (size_t i = 0; i < a->ninstants; i++) {
        const struct vsp_instant *in = &a->instants[i];
        const char *name = in->kind == VSP_F_OOM ? "out of memory"
                           : in->kind == VSP_F_FRAGMENTATION ? "fragmentation"
                                                             : "host fallback";
        fprintf(out, ",\n{\"name\":\"%s\",\"ph\":\"i\",\"s\":\"p\",\"pid\":%u,\"tid\":0,\"ts\":%.3f,"
                     "\"args\":{\"api\":\"%s\",\"bytes\":%" PRIu64 "}}",
                name, a->pid, (double)(in->time_ns >= t0 ? in->time_ns - t0 : 0) / 1000.0, vsp_api_name(in->api),
                in->size);
    }
}

void vsp_perfetto_end(FILE *out)
{
    fputs("\n]}\n", out);
}

/* ---- SVG timeline ---- */

#define SVG_W 960
#define PANEL_H 320
#define PLOT_X 80
#define PLOT_W 840
#define PLOT_Y 40
#define PLOT_H 220

static const char *const kind_colors[VSP_MEM_COUNT_] = {"#999999", "#1f77b4", "#8c564b", "#ff7f0e", "#e377c2",
                                                        "#9467bd", "#2ca02c", "#17becf", "#7f7f7f"};

void vsp_svg_begin(FILE *out, int ntraces)
{
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, PANEL_H * (ntraces > 0 ? ntraces : 1), SVG_W, PANEL_H * (ntraces > 0 ? ntraces : 1));
}

void vsp_svg_trace(FILE *out, const char *path, const struct vsp_analysis *a, int index)
{
    int y0 = index * PANEL_H;
    uint64_t t0 = a->nsamples ? a->samples[0].t0 : 0, t1 = a->nsamples ? a->samples[a->nsamples - 1].t1 : 1;
    if (t1 <= t0)
        t1 = t0 + 1;
    uint64_t ymax = 1;
    int present[VSP_MEM_COUNT_] = {0};
    for (size_t i = 0; i < a->nsamples; i++)
        for (size_t k = 0; k < NTRACK; k++) {
            uint64_t v = a->samples[i].bytes[track_kinds[k]];
            if (v > ymax)
                ymax = v;
            if (v)
                present[track_kinds[k]] = 1;
        }
    fprintf(out, "<g transform=\"translate(0,%d)\">\n<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">",
            y0, PLOT_X);
    xml_escape(out, a->exe ? a->exe : "?");
    fprintf(out, " (pid %u): live bytes by memory kind</text>\n<text x=\"%d\" y=\"34\" fill=\"#666\">", a->pid, PLOT_X);
    xml_escape(out, path);
    fprintf(out, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#ccc\"/>\n",
            PLOT_X, PLOT_Y, PLOT_W, PLOT_H);
    char lbl[32];
    for (int g = 0; g <= 4; g++) {
        int y = PLOT_Y + PLOT_H - g * PLOT_H / 4;
        vsp_human_bytes(lbl, sizeof lbl, ymax * (uint64_t)g / 4);
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/><text x=\"%d\" y=\"%d\" "
                     "text-anchor=\"end\">%s</text>\n", PLOT_X, PLOT_X + PLOT_W, y, y, PLOT_X - 6, y + 4, lbl);
    }
    double secs = (double)(t1 - t0) / 1e9;
    fprintf(out, "<text x=\"%d\" y=\"%d\">0 s</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3f s</text>\n",
            PLOT_X, PLOT_Y + PLOT_H + 16, PLOT_X + PLOT_W, PLOT_Y + PLOT_H + 16, secs);
#define X(t) (PLOT_X + (double)((t) - t0) * PLOT_W / (double)(t1 - t0))
#define Y(v) (PLOT_Y + PLOT_H - (double)(v) * PLOT_H / (double)ymax)
    for (size_t k = 0; k < NTRACK; k++) {
        int m = track_kinds[k];
        if (!present[m])
            continue;
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", kind_colors[m]);
        double prev = Y(0);
        fprintf(out, "%.1f,%.1f", X(t0), prev);
        for (size_t i = 0; i < a->nsamples; i++) {
            double y = Y(a->samples[i].bytes[m]);
            fprintf(out, " %.1f,%.1f %.1f,%.1f", X(a->samples[i].t0), prev, X(a->samples[i].t0), y);
            prev = y;
        }
        fprintf(out, " %.1f,%.1f\"/>\n", X(t1), prev);
    }
    /* the peak of device bytes */
    if (a->peak_bytes && a->peak_time_ns >= t0) {
        vsp_human_bytes(lbl, sizeof lbl, a->peak_bytes);
        double px = X(a->peak_time_ns);
        fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" stroke-dasharray=\"4 3\"/>"
                     "<text x=\"%.1f\" y=\"%d\" fill=\"#1f77b4\">peak device %s</text>\n",
                px, px, PLOT_Y, PLOT_Y + PLOT_H, px + 4, PLOT_Y + 12, lbl);
    }
    /* failures and fallbacks */
    for (size_t i = 0; i < a->ninstants; i++) {
        const struct vsp_instant *in = &a->instants[i];
        if (in->time_ns < t0)
            continue;
        const char *col = in->kind == VSP_F_HOST_FALLBACK ? "#ff7f0e" : "#d62728";
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%d\" r=\"4\" fill=\"%s\"><title>%s %s of %" PRIu64
                     " bytes</title></circle>\n",
                X(in->time_ns), PLOT_Y + PLOT_H - 4, col,
                in->kind == VSP_F_OOM ? "out of memory:" : in->kind == VSP_F_FRAGMENTATION ? "fragmentation:"
                                                                                           : "host fallback:",
                vsp_api_name(in->api), in->size);
    }
#undef X
#undef Y
    int lx = PLOT_X;
    for (size_t k = 0; k < NTRACK; k++) {
        int m = track_kinds[k];
        if (!present[m])
            continue;
        fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
                lx, PLOT_Y + PLOT_H + 26, kind_colors[m], lx + 14, PLOT_Y + PLOT_H + 35, vsp_memory_name((unsigned)m));
        lx += 130;
    }
    fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"#d62728\"/><text x=\"%d\" y=\"%d\">allocation failed</text>\n"
                 "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"#ff7f0e\"/><text x=\"%d\" y=\"%d\">host allocation</text>\n",
            PLOT_X, PLOT_Y + PLOT_H + 52, PLOT_X + 10, PLOT_Y + PLOT_H + 56, PLOT_X + 160, PLOT_Y + PLOT_H + 52,
            PLOT_X + 170, PLOT_Y + PLOT_H + 56);
    fputs("</g>\n", out);
}

void vsp_svg_end(FILE *out)
{
    fputs("</svg>\n", out);
}

/* ---- JUnit XML ---- */

void vsp_junit_begin(FILE *out)
{
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vramspy\">\n", out);
}

void vsp_junit_trace(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                     unsigned checked_mask)
{
    int failures = 0;
    for (int k = 0; k < VSP_F_COUNT_; k++) {
        for (size_t i = 0; i < a->nfindings; i++)
            if (a->findings[i].kind == k) {
                failures++;
                break;
            }
    }
    fprintf(out, "  <testsuite name=\"vramspy: ");
    xml_escape(out, a->exe ? a->exe : "?");
    fprintf(out, " (pid %u)\" tests=\"%d\" failures=\"%d\" errors=\"0\">\n", a->pid, VSP_F_COUNT_, failures);
    fprintf(out, "    <properties><property name=\"trace\" value=\"");
    xml_escape(out, path);
    fprintf(out, "\"/><property name=\"complete\" value=\"%s\"/></properties>\n", a->complete ? "true" : "false");
    for (int k = 0; k < VSP_F_COUNT_; k++) {
        fprintf(out, "    <testcase classname=\"vramspy.%s\" name=\"%s\"", a->exe ? strrchr(a->exe, '/') ? strrchr(a->exe, '/') + 1 : a->exe : "process",
                vsp_finding_json_name(k));
        int n = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < a->nfindings; i++)
            if (a->findings[i].kind == k) {
                n++;
                bytes += a->findings[i].bytes;
            }
        if (!n) {
            fputs("/>\n", out);
            continue;
        }
        fprintf(out, ">\n      <failure type=\"%s\" message=\"%d %s finding%s, %" PRIu64 " bytes%s\">",
                vsp_finding_json_name(k), n, vsp_finding_json_name(k), n == 1 ? "" : "s", bytes,
                (checked_mask >> k) & 1 ? "" : " (not in --fail-on)");
        for (size_t i = 0; i < a->nfindings; i++) {
            const struct vsp_finding *f = &a->findings[i];
            if (f->kind != k)
                continue;
            char head[256];
            snprintf(head, sizeof head, "\n%s: %s, %" PRIu64 " call%s, %" PRIu64 " bytes\n", vsp_finding_json_name(k),
                     vsp_api_name(f->api), f->count, f->count == 1 ? "" : "s", f->bytes);
            xml_escape(out, head);
            const struct vsp_stack *st = vsp_analysis_stack(a, f->stack_id);
            for (unsigned fr = 0; st && fr < st->nframes; fr++) {
                struct vsp_frame_info fi[MAX_INLINE];
                int m = vsp_sym_frame(sym, st, fr, fi, MAX_INLINE);
                for (int j = 0; j < m; j++) {
                    char label[700], line[1400];
                    vsp_frame_label(&fi[j], label, sizeof label);
                    if (fi[j].file[0])
                        snprintf(line, sizeof line, "    at %s (%s:%d)\n", label, fi[j].file, fi[j].line);
                    else
                        snprintf(line, sizeof line, "    at %s\n", label);
                    xml_escape(out, line);
                }
            }
        }
        fputs("</failure>\n    </testcase>\n", out);
    }
    fputs("  </testsuite>\n", out);
}

void vsp_junit_end(FILE *out)
{
    fputs("</testsuites>\n", out);
}
