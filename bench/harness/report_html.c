/* SPDX-License-Identifier: GPL-3.0-or-later */
/* report_html.c — `moebench report --format html`: one self-contained page
 * per matrix (report/report.html), and the joined page of `make bench`
 * (--page FILE).
 *
 * The page lays out what report.c computed (report_int.h): the same grids,
 * fit rows, claims and provenance rows the Markdown shows, with the same
 * cell texts. Self-contained: the style and a few lines of script (sorting
 * a table by a column) are inline, and each figure is gnuplot's SVG as a
 * data: image. An SVG loaded as an image runs no script and fetches
 * nothing (the browser's secure static mode), so a figure needs no
 * sanitising and the ids of several figures cannot collide; a
 * Content-Security-Policy that allows no network and only the page's own
 * script (by its hash) enforces the rest. Every string from a matrix or a
 * result goes through mb_html_esc. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_int.h"
#include "moe/version.h"
#include "sha256.h"

#define MAX_CELL_ROWS 200 /* cells listed as not ok, at most */

void mb_html_esc(mb_buf *b, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '&': mb_buf_puts(b, "&amp;"); break;
    case '<': mb_buf_puts(b, "&lt;"); break;
    case '>': mb_buf_puts(b, "&gt;"); break;
    case '"': mb_buf_puts(b, "&quot;"); break;
    case '\'': mb_buf_puts(b, "&#39;"); break;
    default: mb_buf_add(b, s, 1);
    }
  }
}

/* Escaped text in which `name` (the captions' Markdown code spans) becomes
 * <code>name</code>. */
static void esc_code(mb_buf *b, const char *s)
{
  int open = 0;
  for (; s && *s; s++) {
    if (*s == '`') {
      mb_buf_puts(b, open ? "</code>" : "<code>");
      open = !open;
      continue;
    }
    char c[2] = {*s, 0};
    mb_html_esc(b, c);
  }
  if (open)
    mb_buf_puts(b, "</code>");
}

static void buf_text(mb_buf *b)
{
  mb_buf_init(b);
  mb_buf_add(b, "", 0);
}

void mb_html_begin(mb_html *h, const mb_matrix *m, size_t nok, size_t ndiverged, size_t nfailed,
                   size_t nmissing)
{
  memset(h, 0, sizeof *h);
  h->m = m;
  mb_buf *bufs[] = {&h->head, &h->claims, &h->seq,   &h->tables,
                    &h->fits, &h->figs,   &h->cells, &h->prov};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    mb_buf_init(bufs[i]);
  mb_buf *b = &h->head;
  mb_buf_puts(b, "<section class=\"matrix\" id=\"m-");
  mb_html_esc(b, m->name);
  mb_buf_puts(b, "\" aria-labelledby=\"m-");
  mb_html_esc(b, m->name);
  mb_buf_puts(b, "-h\">\n<h1 id=\"m-");
  mb_html_esc(b, m->name);
  mb_buf_puts(b, "-h\">");
  mb_html_esc(b, m->name);
  mb_buf_puts(b, "</h1>\n");
  if (m->description) {
    mb_buf_puts(b, "<p class=\"desc\">");
    mb_html_esc(b, m->description);
    mb_buf_puts(b, "</p>\n");
  }
  mb_buf_puts(b, "<p>Task <code>");
  mb_html_esc(b, m->task->name);
  mb_buf_printf(b,
                "</code>, seed %llu, %zu cells (%ld replications): %zu ok, %zu diverged, %zu "
                "failed, %zu missing.</p>\n",
                (unsigned long long)m->seed, m->ncells, m->replications, nok, ndiverged, nfailed,
                nmissing);
}

/* <th scope="col"> cells of a header row; sortable ones carry a button. */
static void th_col(mb_buf *b, const char *text, int sortable)
{
  mb_buf_puts(b, "<th scope=\"col\">");
  if (sortable)
    mb_buf_puts(b, "<button type=\"button\">");
  mb_html_esc(b, text);
  if (sortable)
    mb_buf_puts(b, "</button>");
  mb_buf_puts(b, "</th>");
}

static void td(mb_buf *b, const char *text, int num)
{
  mb_buf_puts(b, num ? "<td class=\"num\">" : "<td>");
  mb_html_esc(b, text);
  mb_buf_puts(b, "</td>");
}

static void table_open(mb_buf *b, const char *id, const char *caption)
{
  mb_buf_puts(b, "<div class=\"tw\" tabindex=\"0\"><table class=\"sortable\"");
  if (id) {
    mb_buf_puts(b, " id=\"");
    mb_html_esc(b, id);
    mb_buf_puts(b, "\"");
  }
  mb_buf_puts(b, ">\n");
  if (caption) {
    mb_buf_puts(b, "<caption>");
    esc_code(b, caption);
    mb_buf_puts(b, "</caption>\n");
  }
}

static void num_text(mb_buf *b, double v)
{
  if (isnan(v))
    mb_buf_puts(b, "n/a");
  else
    mb_buf_printf(b, "%.4g", v);
}

void mb_html_claims(mb_html *h, const mb_claim_res *c, size_t n)
{
  mb_buf *b = &h->claims;
  mb_buf_puts(
      b, "<section class=\"claims\">\n<h2>Claims</h2>\n<p>Each claim is resolved from its "
         "comparison's 95% paired "
         "interval: <strong>confirmed</strong> when the interval lies on the expected side of 0, "
         "<strong>refuted</strong> when it lies on the other side, else "
         "<strong>unresolved</strong>.</p>\n");
  mb_buf id;
  buf_text(&id);
  mb_buf_printf(&id, "%s-claims", h->m->name);
  table_open(b, id.s, NULL);
  mb_buf_free(&id);
  mb_buf_puts(b, "<thead><tr>");
  const char *head[] = {"claim", "table", "comparison", "expected",
                        "n",     "mean",  "95% CI",     "verdict"};
  for (int k = 0; k < 8; k++)
    th_col(b, head[k], 1);
  mb_buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (size_t i = 0; i < n; i++) {
    const mb_claim *q = c[i].q;
    mb_buf t;
    mb_buf_puts(b, "<tr><th scope=\"row\">");
    mb_html_esc(b, q->claim);
    mb_buf_puts(b, "</th>");
    td(b, q->table, 0);
    buf_text(&t);
    mb_buf_puts(&t, q->row);
    for (size_t k = 0; k < q->column.n; k++)
      mb_buf_printf(&t, ", %s=%s", q->column.key[k], q->column.val[k]);
    td(b, t.s, 0);
    mb_buf_free(&t);
    td(b, mb_rep_expect_text[q->expect], 0);
    mb_buf_printf(b, "<td class=\"num\">%zu</td>", c[i].n);
    buf_text(&t);
    num_text(&t, c[i].mean);
    td(b, t.s, 1);
    mb_buf_free(&t);
    buf_text(&t);
    if (isnan(c[i].lo))
      mb_buf_puts(&t, "n/a");
    else {
      mb_buf_puts(&t, "[");
      num_text(&t, c[i].lo);
      mb_buf_puts(&t, ", ");
      num_text(&t, c[i].hi);
      mb_buf_puts(&t, "]");
    }
    td(b, t.s, 1);
    mb_buf_free(&t);
    mb_buf_printf(b, "<td class=\"v-%s\">%s</td></tr>\n", c[i].verdict, c[i].verdict);
  }
  mb_buf_puts(b, "</tbody></table></div>\n</section>\n");
}

void mb_html_seq(mb_html *h, const mb_json *j)
{
  mb_buf *b = &h->seq;
  double v;
  const mb_json *rounds = mb_json_get(j, "rounds");
  const char *st = mb_json_str(j, "stopped");
  mb_buf_puts(b,
              "<section class=\"seq\">\n<h2>Sequential replication</h2>\n<p>Confidence sequence: ");
  mb_html_esc(b, mb_json_str(j, "method") ? mb_json_str(j, "method") : "?");
  mb_buf_puts(b, ". ");
  if (mb_json_as_double(mb_json_get(j, "half_width"), &v))
    mb_buf_printf(b, "Target half-width %.6g; ", v);
  if (mb_json_as_double(mb_json_get(j, "max_replications"), &v))
    mb_buf_printf(b, "at most %.0f replications; ", v);
  if (mb_json_as_double(mb_json_get(j, "replications"), &v)) {
    mb_buf_printf(b, "%s at %.0f replications after %zu round(s)", st ? "stopped" : "in progress",
                  v, rounds ? rounds->n : 0);
    if (st) {
      mb_buf_puts(b, ": ");
      mb_html_esc(b, st);
    }
    mb_buf_puts(b, ".");
  }
  mb_buf_puts(b, "</p>\n");
  table_open(b, NULL, NULL);
  mb_buf_puts(b, "<thead><tr>");
  const char *head[] = {"round", "n",      "comparison", "pairs",   "mean",
                        "sd",    "95% CS", "half-width", "resolved"};
  for (int k = 0; k < 9; k++)
    th_col(b, head[k], 1);
  mb_buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (size_t r = 0; rounds && r < rounds->n; r++) {
    const mb_json *rd = rounds->items[r], *cs = mb_json_get(rd, "comparisons");
    double rn = 0, nn = 0;
    mb_json_as_double(mb_json_get(rd, "round"), &rn);
    mb_json_as_double(mb_json_get(rd, "replications"), &nn);
    for (size_t k = 0; cs && k < cs->n; k++) {
      const mb_json *c = cs->items[k];
      double x[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
      const char *f[] = {"pairs", "mean", "sd", "cs_lo", "cs_hi", "half_width"};
      for (int i = 0; i < 6; i++)
        mb_json_as_double(mb_json_get(c, f[i]), &x[i]);
      mb_buf_printf(b,
                    "<tr><td class=\"num\">%.0f</td><td class=\"num\">%.0f</td><th scope=\"row\">",
                    rn, nn);
      mb_html_esc(b, mb_json_str(c, "comparison") ? mb_json_str(c, "comparison") : "?");
      mb_buf_printf(b, "</th><td class=\"num\">%.0f</td><td class=\"num\">", x[0]);
      num_text(b, x[1]);
      mb_buf_puts(b, "</td><td class=\"num\">");
      num_text(b, x[2]);
      if (isnan(x[5]))
        mb_buf_puts(b, "</td><td class=\"num\">unbounded</td><td class=\"num\">inf");
      else {
        mb_buf_puts(b, "</td><td class=\"num\">[");
        num_text(b, x[3]);
        mb_buf_puts(b, ", ");
        num_text(b, x[4]);
        mb_buf_puts(b, "]</td><td class=\"num\">");
        num_text(b, x[5]);
      }
      mb_buf_puts(b, "</td>");
      td(b, mb_json_str(c, "resolved") ? mb_json_str(c, "resolved") : "?", 0);
      mb_buf_puts(b, "</tr>\n");
    }
  }
  mb_buf_puts(b, "</tbody></table></div>\n</section>\n");
}

static void section_heading(mb_buf *b, const mb_matrix *m, const char *kind, const char *name)
{
  mb_buf_puts(b, "<h3 id=\"");
  mb_html_esc(b, m->name);
  mb_buf_printf(b, "-%s-", kind);
  mb_html_esc(b, name);
  mb_buf_printf(b, "-h\">%s <code>", !strcmp(kind, "table") ? "Table" : "Fit");
  mb_html_esc(b, name);
  mb_buf_puts(b, "</code></h3>\n");
}

void mb_html_table(mb_html *h, const mb_table *t, const grid *g, const char *pooled)
{
  mb_buf *b = &h->tables;
  if (!b->n)
    mb_buf_puts(b, "<section class=\"tables\">\n<h2>Tables</h2>\n");
  section_heading(b, h->m, "table", t->name);
  mb_buf cap, x;
  buf_text(&cap);
  mb_rep_table_caption(&cap, t);
  buf_text(&x);
  mb_rep_table_legend(&x, t, g);
  if (x.n) {
    mb_buf_puts(b, "<p class=\"legend\">");
    esc_code(b, x.s);
    mb_buf_puts(b, "</p>\n");
  }
  mb_buf_free(&x);
  buf_text(&x);
  mb_buf_printf(&x, "%s-table-%s", h->m->name, t->name);
  table_open(b, x.s, cap.s);
  mb_buf_free(&x);
  mb_buf_free(&cap);
  mb_buf_puts(b, "<thead><tr>");
  for (size_t k = 0; k < t->nrows; k++)
    th_col(b, t->rows[k], 1);
  for (size_t j = 0; j < g->nc; j++)
    for (size_t q = 0; q < g->nstats; q++) {
      buf_text(&x);
      if (t->ncols) {
        mb_rep_label(&x, t->cols, g->cols[j].val, t->ncols, "");
        mb_buf_puts(&x, " ");
      }
      mb_rep_stat_name(&x, t, g->stats[q]);
      th_col(b, x.s, 1);
      mb_buf_free(&x);
    }
  mb_buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (size_t r = 0; r < g->nr; r++) {
    mb_buf_puts(b, "<tr>");
    for (size_t k = 0; k < t->nrows; k++) {
      mb_buf_puts(b, k ? "<td>" : "<th scope=\"row\">");
      mb_html_esc(b, g->rows[r].val[k]);
      mb_buf_puts(b, k ? "</td>" : "</th>");
    }
    for (size_t j = 0; j < g->nc; j++)
      for (size_t q = 0; q < g->nstats; q++) {
        buf_text(&x);
        mb_rep_cell_text(&x, g, r * g->nc + j, g->stats[q]);
        td(b, x.s, 1);
        mb_buf_free(&x);
      }
    mb_buf_puts(b, "</tr>\n");
  }
  mb_buf_puts(b, "</tbody></table></div>\n");
  if (pooled) {
    mb_buf_puts(b, "<p class=\"note\">Pooled over the replications and over: ");
    mb_html_esc(b, pooled);
    mb_buf_puts(b, ".</p>\n");
  }
}

void mb_html_fit(mb_html *h, const mb_fit *f, const fitrow *r, size_t n, const char *pooled)
{
  mb_buf *b = &h->fits;
  if (!b->n)
    mb_buf_puts(b, "<section class=\"fits\">\n<h2>Rate fits</h2>\n");
  section_heading(b, h->m, "fit", f->name);
  mb_buf cap, x;
  buf_text(&cap);
  mb_rep_fit_caption(&cap, f);
  buf_text(&x);
  mb_buf_printf(&x, "%s-fit-%s", h->m->name, f->name);
  table_open(b, x.s, cap.s);
  mb_buf_free(&x);
  mb_buf_free(&cap);
  mb_buf_puts(b, "<thead><tr>");
  for (int k = 0; k < 6; k++)
    th_col(b, mb_rep_fit_head[k], 1);
  mb_buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (size_t i = 0; i < n; i++) {
    mb_buf c[6];
    for (int k = 0; k < 6; k++)
      buf_text(&c[k]);
    mb_rep_fit_cells(c, f, &r[i]);
    mb_buf_puts(b, "<tr><th scope=\"row\">");
    mb_html_esc(b, c[0].s);
    mb_buf_puts(b, "</th>");
    for (int k = 1; k < 6; k++)
      td(b, c[k].s, k >= 2);
    mb_buf_puts(b, "</tr>\n");
    for (int k = 0; k < 6; k++)
      mb_buf_free(&c[k]);
  }
  mb_buf_puts(b, "</tbody></table></div>\n");
  int any = 0;
  for (size_t k = 0; k < n; k++)
    if (!r[k].ok) {
      mb_buf_puts(b, any++ ? "<li>" : "<ul class=\"note\">\n<li>");
      mb_html_esc(b, r[k].label);
      mb_buf_puts(b, ": no fit (");
      mb_html_esc(b, r[k].why);
      mb_buf_puts(b, ")</li>\n");
    }
  if (any)
    mb_buf_puts(b, "</ul>\n");
  if (pooled) {
    mb_buf_puts(b, "<p class=\"note\">Each point pools the replications and: ");
    mb_html_esc(b, pooled);
    mb_buf_puts(b, ".</p>\n");
  }
}

static void base64(mb_buf *b, const unsigned char *s, size_t n)
{
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                 (i + 2 < n ? s[i + 2] : 0);
    char o[4] = {a[v >> 18 & 63], a[v >> 12 & 63], i + 1 < n ? a[v >> 6 & 63] : '=',
                 i + 2 < n ? a[v & 63] : '='};
    mb_buf_add(b, o, 4);
  }
}

void mb_html_figure(mb_html *h, const mb_plot *p, const char *svgpath, const char *why,
                    const char *pooled)
{
  mb_buf *b = &h->figs;
  if (!b->n)
    mb_buf_puts(b, "<section class=\"figs\">\n<h2>Figures</h2>\n");
  /* what the figure shows, for a reader who cannot see it */
  mb_buf alt;
  buf_text(&alt);
  mb_buf_printf(&alt, "%s: %s (mean", p->title ? p->title : p->name, p->ylabel ? p->ylabel : p->y);
  if (p->errorbars >= 0)
    mb_buf_printf(&alt, " with %s error bars", mb_stat_names[p->errorbars]);
  mb_buf_printf(&alt, ") against %s%s%s",
                p->xlabel           ? p->xlabel
                : strcmp(p->x, "@") ? p->x
                                    : "its index",
                p->logx ? " (log scale)" : "", p->logy ? ", log y" : "");
  if (p->nby) {
    mb_buf_puts(&alt, p->panels ? ", one panel per " : ", one curve per ");
    for (size_t k = 0; k < p->nby; k++)
      mb_buf_printf(&alt, "%s%s", k ? ", " : "", p->by[k]);
  }
  if (p->fit)
    mb_buf_printf(&alt, "; dashed: the fitted rate of fit %s", p->fit);
  mb_buf_puts(b, "<figure id=\"");
  mb_html_esc(b, h->m->name);
  mb_buf_puts(b, "-fig-");
  mb_html_esc(b, p->name);
  mb_buf_puts(b, "\">\n");
  size_t n = 0;
  char *svg = svgpath ? mb_read_file(svgpath, &n) : NULL;
  if (svg && n) {
    mb_buf_puts(b, "<img src=\"data:image/svg+xml;base64,");
    base64(b, (const unsigned char *)svg, n);
    mb_buf_puts(b, "\" alt=\"");
    mb_html_esc(b, alt.s);
    mb_buf_puts(b, "\">\n");
    h->nfig++;
  } else {
    mb_buf_puts(b, "<p class=\"missing\" role=\"img\" aria-label=\"");
    mb_html_esc(b, alt.s);
    mb_buf_puts(b, "\">Figure not rendered (");
    mb_html_esc(b, why ? why : svgpath ? "unreadable SVG" : "no SVG");
    mb_buf_puts(b, "): render it with <code>gnuplot ");
    mb_html_esc(b, p->name);
    mb_buf_puts(b, ".gp</code> in the report directory.</p>\n");
  }
  free(svg);
  mb_buf_puts(b, "<figcaption>Figure <code>");
  mb_html_esc(b, p->name);
  mb_buf_puts(b, "</code>: ");
  mb_html_esc(b, alt.s);
  mb_buf_puts(b, ".");
  if (pooled) {
    mb_buf_puts(b, " <span class=\"note\">Each point pools the replications and: ");
    mb_html_esc(b, pooled);
    mb_buf_puts(b, ".</span>");
  }
  mb_buf_puts(b, "</figcaption>\n</figure>\n");
  mb_buf_free(&alt);
}

void mb_html_cells(mb_html *h, const int *status, const mb_rfile *rf)
{
  const mb_matrix *m = h->m;
  mb_buf *b = &h->cells;
  static const char *const sname[] = {"missing", "ok", "failed", "corrupt", "diverged"};
  size_t bad = 0;
  for (size_t c = 0; c < m->ncells; c++)
    bad += status[c] != 1;
  mb_buf_puts(b, "<section class=\"cells\">\n<h2>Cells not ok</h2>\n");
  if (!bad) {
    mb_buf_printf(b, "<p>None: all %zu cells are ok.</p>\n</section>\n", m->ncells);
    return;
  }
  /* the parameters that vary between cells say which cell it is */
  const mb_param **vary = calloc(m->nparams + 1, sizeof *vary);
  size_t nv = 0;
  if (!vary)
    mb_oom(0);
  for (const mb_param *p = m->task->params; p->name; p++)
    for (size_t c = 1; c < m->ncells; c++)
      if (strcmp(mb_cell_str(m->cells[c].cell, p->name), mb_cell_str(m->cells[0].cell, p->name))) {
        vary[nv++] = p;
        break;
      }
  mb_buf_printf(b,
                "<p>%zu of %zu cells have no usable result: failed (the task reported an error), "
                "diverged (it ran, "
                "but its result cannot be trusted), missing (not run yet) or corrupt (unreadable "
                "result file).",
                bad, m->ncells);
  if (bad > MAX_CELL_ROWS)
    mb_buf_printf(b, " The first %d are listed.", MAX_CELL_ROWS);
  mb_buf_puts(b, "</p>\n");
  mb_buf id;
  buf_text(&id);
  mb_buf_printf(&id, "%s-cells", m->name);
  table_open(b, id.s, NULL);
  mb_buf_free(&id);
  mb_buf_puts(b, "<thead><tr>");
  th_col(b, "cell", 1);
  th_col(b, "status", 1);
  for (size_t k = 0; k < nv; k++)
    th_col(b, vary[k]->name, 1);
  th_col(b, "rep", 1);
  th_col(b, "message", 1);
  mb_buf_puts(b, "</tr></thead>\n<tbody>\n");
  size_t shown = 0;
  for (size_t c = 0; c < m->ncells && shown < MAX_CELL_ROWS; c++) {
    if (status[c] == 1)
      continue;
    shown++;
    mb_buf_puts(b, "<tr><th scope=\"row\"><code>");
    mb_html_esc(b, m->cells[c].id);
    mb_buf_puts(b, "</code></th>");
    mb_buf_printf(b, "<td class=\"st-%s\">%s</td>", sname[status[c]], sname[status[c]]);
    for (size_t k = 0; k < nv; k++)
      td(b, mb_cell_str(m->cells[c].cell, vary[k]->name), 0);
    mb_buf_printf(b, "<td class=\"num\">%ld</td>", m->cells[c].rep);
    td(b, (status[c] == 2 || status[c] == 4) && rf[c].error ? rf[c].error : "", 0);
    mb_buf_puts(b, "</tr>\n");
  }
  mb_buf_puts(b, "</tbody></table></div>\n</section>\n");
  free(vary);
}

void mb_html_provenance(mb_html *h, const mb_prov_row *r, size_t n)
{
  mb_buf *b = &h->prov;
  mb_buf_puts(b, "<section class=\"prov\">\n<h2>Provenance</h2>\n<p>The distinct values over the "
                 "ok cells (several "
                 "values of a field mean the cells came from different builds or machines); "
                 "<code>notes.data_sha256</code> fingerprints the data files a cell read.</p>\n");
  mb_buf id;
  buf_text(&id);
  mb_buf_printf(&id, "%s-provenance", h->m->name);
  table_open(b, id.s, NULL);
  mb_buf_free(&id);
  mb_buf_puts(b, "<thead><tr>");
  th_col(b, "field", 0);
  th_col(b, "value", 0);
  th_col(b, "cells", 0);
  mb_buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (size_t k = 0; k < n; k++) {
    mb_buf_puts(b, "<tr><th scope=\"row\">");
    mb_html_esc(b, r[k].field);
    mb_buf_puts(b, "</th><td class=\"pre\">");
    mb_html_esc(b, r[k].value);
    mb_buf_printf(b, "</td><td class=\"num\">%zu</td></tr>\n", r[k].cells);
  }
  mb_buf_puts(b, "</tbody></table></div>\n</section>\n");
}

void mb_html_finish(mb_html *h, const char *brief, mb_buf *body)
{
  mb_buf_add(body, h->head.s ? h->head.s : "", h->head.n);
  mb_buf_puts(body, "<section class=\"brief\" aria-labelledby=\"m-");
  mb_html_esc(body, h->m->name);
  mb_buf_puts(body, "-brief\">\n<h2 id=\"m-");
  mb_html_esc(body, h->m->name);
  mb_buf_puts(body, "-brief\">Summary</h2>\n<pre>");
  mb_html_esc(body, brief);
  mb_buf_puts(body, "</pre>\n</section>\n");
  mb_buf *parts[] = {&h->claims, &h->seq, &h->tables, &h->fits, &h->figs};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    if (!parts[i]->n)
      continue;
    mb_buf_add(body, parts[i]->s, parts[i]->n);
    if (parts[i] == &h->tables || parts[i] == &h->fits || parts[i] == &h->figs)
      mb_buf_puts(body, "</section>\n");
  }
  mb_buf_add(body, h->cells.s ? h->cells.s : "", h->cells.n);
  mb_buf_add(body, h->prov.s ? h->prov.s : "", h->prov.n);
  mb_buf_puts(body, "</section>\n");
  mb_buf *bufs[] = {&h->head, &h->claims, &h->seq,   &h->tables,
                    &h->fits, &h->figs,   &h->cells, &h->prov};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    mb_buf_free(bufs[i]);
}

/* Sorting a table by a column: click its header button again to reverse.
 * Numbers (and intervals, by their lower end) sort numerically, before text. */
static const char sort_js[] =
    "document.addEventListener('click',function(e){var b=e.target.closest('table.sortable "
    "th>button');if(!b)return;"
    "var "
    "th=b.parentNode,i=Array.prototype.indexOf.call(th.parentNode.children,th),tb=th.closest('"
    "table').tBodies[0],"
    "d=th.getAttribute('aria-sort')==='ascending'?-1:1;function k(r){var "
    "t=r.children[i].textContent,v=parseFloat(t.replace(/^\\[/,''));"
    "return isNaN(v)?t:v}Array.prototype.slice.call(tb.rows).sort(function(x,y){var a=k(x),c=k(y);"
    "if(typeof a!==typeof c)return typeof "
    "a==='number'?-1:1;return(a<c?-1:a>c?1:0)*d}).forEach(function(r){tb.appendChild(r)});"
    "th.parentNode.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort')});"
    "th.setAttribute('aria-sort',d>0?'ascending':'descending')});";

static const char style_css[] =
    "body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu "
    "Sans',sans-serif;margin:0;color:#1b1b1b;background:#fff}"
    "main{max-width:76rem;margin:0 auto;padding:1rem}"
    "h1{font-size:1.8rem;margin:.6em 0 .3em}h2{font-size:1.35rem;margin:1.4em 0 "
    ".4em;border-bottom:1px solid #ccc}"
    "h3{font-size:1.1rem;margin:1.2em 0 .3em}h4{font-size:1rem}"
    "code{font-family:'DejaVu Sans Mono',monospace;font-size:.92em}"
    ".brief pre{background:#f4f6f8;border:1px solid #c9d1d9;border-left:4px solid "
    "#0060ad;padding:.7rem;overflow-x:auto;"
    "font-size:.85rem;line-height:1.3}"
    ".tw{overflow-x:auto;margin:.4rem 0 1rem}"
    "table{border-collapse:collapse;font-size:.9rem}caption{text-align:left;font-style:italic;"
    "padding:.2rem 0;caption-side:top}"
    "th,td{border:1px solid #d0d7de;padding:.25rem .5rem;vertical-align:top}thead "
    "th{background:#eef1f4;text-align:left}"
    "tbody "
    "th{text-align:left;font-weight:600;background:#fafbfc}td.num{text-align:right;font-variant-"
    "numeric:tabular-nums;white-space:nowrap}"
    "td.pre{white-space:pre-wrap;word-break:break-all}"
    "th "
    "button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;text-"
    "align:left;color:inherit}"
    "th[aria-sort=ascending] button::after{content:' \\25B2'}th[aria-sort=descending] "
    "button::after{content:' \\25BC'}"
    ".v-confirmed,.st-ok{color:#0a6b2d;font-weight:600}.v-refuted,.st-failed,.st-diverged,.st-"
    "corrupt{color:#b00020;font-weight:600}"
    ".v-unresolved,.st-missing{color:#6b5600}"
    "figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid "
    "#e1e4e8;background:#fff}"
    "figcaption{font-size:.9rem;color:#444}.note,.legend{font-size:.9rem;color:#333}"
    ".missing{border:1px dashed #b00020;padding:.5rem}nav ol{columns:2 16rem}"
    "@media (max-width:40rem){main{padding:.5rem}h1{font-size:1.4rem}table{font-size:.8rem}}";

/* Move every heading one level down (<h1> to <h2> ...): the bodies of a
 * joined page sit under its title. Headings come only from this file:
 * text from a matrix or result is escaped, so "<h" cannot come from it. */
static void shift_headings(mb_buf *out, const char *s)
{
  for (; *s; s++) {
    if (s[0] == '<' && (s[1] == 'h' || (s[1] == '/' && s[2] == 'h'))) {
      const char *d = s + (s[1] == '/' ? 2 : 1) + 1;
      if (*d >= '1' && *d <= '5' && (d[1] == '>' || d[1] == ' ')) {
        mb_buf_add(out, s, (size_t)(d - s));
        mb_buf_printf(out, "%c", *d + 1);
        s = d;
        continue;
      }
    }
    mb_buf_add(out, s, 1);
  }
}

void mb_html_page(mb_buf *out, const char *title, const char *body, char *const *names, size_t n)
{
  unsigned char dg[32];
  moei_sha256 sh;
  moei_sha256_init(&sh);
  moei_sha256_update(&sh, sort_js, strlen(sort_js));
  moei_sha256_final(&sh, dg);
  mb_buf_puts(
      out,
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'; script-src 'sha256-");
  base64(out, dg, 32);
  mb_buf_puts(out, "'\">\n<meta name=\"generator\" content=\"moebench report " MOE_VERSION_STRING
                   "\">\n<title>");
  if (n)
    mb_html_esc(out, title);
  else {
    mb_buf_puts(out, "moebench report: ");
    mb_html_esc(out, title);
  }
  mb_buf_printf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", style_css);
  if (n) {
    mb_buf_puts(out, "<h1>");
    mb_html_esc(out, title);
    mb_buf_puts(out,
                "</h1>\n<nav aria-labelledby=\"toc-h\">\n<h2 id=\"toc-h\">Contents</h2>\n<ol>\n");
    for (size_t i = 0; i < n; i++) {
      mb_buf_puts(out, "<li><a href=\"#m-");
      mb_html_esc(out, names[i]);
      mb_buf_puts(out, "\">");
      mb_html_esc(out, names[i]);
      mb_buf_puts(out, "</a></li>\n");
    }
    mb_buf_puts(out, "</ol>\n</nav>\n");
    shift_headings(out, body);
  } else
    mb_buf_puts(out, body);
  mb_buf_puts(
      out, "</main>\n<footer><p style=\"text-align:center;font-size:.8rem;color:#555\">Written by "
           "<code>moebench report</code> " MOE_VERSION_STRING
           " from the result files; every number can be "
           "regenerated with it.</p></footer>\n<script>");
  mb_buf_puts(out, sort_js);
  mb_buf_puts(out, "</script>\n</body>\n</html>\n");
}
