/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix_spec.c — the report's part of a matrix: tables, fits, plots,
 * sequential and claims, each checked against the task's parameters and
 * metrics and against one another (matrix_int.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "matrix_int.h"

const char *const mb_stat_names[] = {"mean",   "sd",  "se",  "ci95",   "n",
                                     "median", "min", "max", "trmean", NULL};

static const char *const table_keys[] = {"name",   "rows",  "columns", "metric", "stats",
                                         "paired", "reach", "power",   "family", NULL};
static const char *const power_keys[] = {"effect", NULL};
static const char *const sequential_keys[] = {"compare", "half_width", "max_replications", "round",
                                              NULL};
static const char *const fit_keys[] = {"name",       "x",       "y",       "by", "bootstrap",
                                       "references", "centers", "exclude", NULL};
static const char *const center_names[] = {"mean", "median", "trmean", NULL};
static const char *const plot_keys[] = {"name",   "x",      "y",         "by",  "panels",
                                        "logx",   "logy",   "errorbars", "fit", "title",
                                        "xlabel", "ylabel", "titles",    NULL};
static const char *const ref_labels[] = {"loss", "paper", "theory", NULL};
static const char *const claim_keys[] = {"claim", "table", "row", "column", "expect", NULL};
const char *const mb_expect_names[] = {"lt0", "gt0", "ne0", NULL};

/* ---- tables, fits, plots ---- */

/* power: {effect: X} on a paired table: the n that detects X. */
static void parse_power(ctx *c, yaml_node_t *x, mb_table *t)
{
  if (x->type != YAML_MAPPING_NODE) {
    mbx_err(c, mark_of(x), "power must be a mapping, e.g. {effect: 0.01}");
    return;
  }
  size_t np;
  pair_t *pr = mbx_pairs(c, x, power_keys, count(power_keys), "power", &np);
  yaml_node_t *e = get(pr, np, "effect", NULL);
  if (!e)
    mbx_err(c, mark_of(x),
            "power has no 'effect' (the difference to detect, in the metric's units)");
  else
    t->power_effect = mbx_want_positive(c, e, "effect");
  if (!t->paired || t->reach)
    mbx_err(c, mark_of(x), "power needs a paired table (without reach)");
  free(pr);
}

void mbx_parse_tables(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(v), "tables must be a list of mappings");
    return;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e)
      continue;
    if (e->type != YAML_MAPPING_NODE) {
      mbx_err(c, mark_of(e), "each table must be a mapping");
      continue;
    }
    size_t np;
    pair_t *pr = mbx_pairs(c, e, table_keys, count(table_keys), "table", &np);
    mb_table t;
    memset(&t, 0, sizeof t);
    t.name = mbx_want_name(c, pr, np, e, "table");
    for (size_t i = 0; t.name && i < m->ntables; i++)
      if (m->tables[i].name && !strcmp(m->tables[i].name, t.name))
        mbx_err(c, mark_of(e), "duplicate table name '%s'", t.name);
    yaml_node_t *x;
    if ((x = get(pr, np, "rows", NULL))) {
      t.rows = mbx_want_keys(c, x, "rows", &t.nrows);
      if (t.nrows == 0 && x->type == YAML_SEQUENCE_NODE)
        mbx_err(c, mark_of(x), "rows must name at least one key");
    } else
      mbx_err(c, mark_of(e), "table has no 'rows'");
    if ((x = get(pr, np, "columns", NULL))) {
      t.cols = mbx_want_keys(c, x, "columns", &t.ncols);
      for (size_t i = 0; i < t.ncols; i++)
        for (size_t j = 0; j < t.nrows; j++)
          if (!strcmp(t.cols[i], t.rows[j]))
            mbx_err(c, mark_of(x), "'%s' is in both rows and columns", t.cols[i]);
    }
    t.metric = mbx_want_metric_node(c, pr, np, e, "metric");
    if ((x = get(pr, np, "paired", NULL))) {
      const char *s = mbx_want_scalar(c, x, "paired");
      if (s && t.nrows != 1)
        mbx_err(c, mark_of(x), "paired needs exactly one row key");
      else if (s) {
        /* the baseline must be a value the row key takes */
        const mb_param *p = mbx_find_param(m->task, t.rows[0], NULL);
        char *cv = NULL, why[256];
        if (p && mb_param_canon(p, s, &cv, why, sizeof why))
          mbx_err(c, mark_of(x), "paired: %s", why);
        else
          t.paired = cv ? cv : xstrdup(s);
      }
    }
    if ((x = get(pr, np, "reach", NULL))) {
      mbx_want_bool(c, x, "reach", &t.reach);
      if (t.reach && (!t.paired || !t.metric || t.metric[strlen(t.metric) - 1] != '@'))
        mbx_err(c, mark_of(x), "reach needs paired and a metric family (NAME@)");
    }
    t.power_effect = NAN;
    if ((x = get(pr, np, "power", NULL)))
      parse_power(c, x, &t);
    if ((x = get(pr, np, "family", NULL))) {
      const char *s = mbx_want_scalar(c, x, "family");
      if (s && !mbx_valid_name(s))
        mbx_err(c, mark_of(x), "family '%s' must match [a-z0-9_-]+", s);
      else if (s && (!t.paired || t.reach))
        mbx_err(c, mark_of(x), "family needs a paired table (without reach)");
      else if (s)
        t.family = xstrdup(s);
    }
    if ((x = get(pr, np, "stats", NULL))) {
      size_t ns;
      mb_mark *sat;
      char **s = mbx_want_names_at(c, x, "stats", &ns, &sat);
      for (size_t i = 0; i < ns; i++) {
        int k = -1;
        for (int j = 0; j < MB_S_COUNT; j++)
          if (!strcmp(s[i], mb_stat_names[j]))
            k = j;
        if (k < 0) {
          const char *dym = mb_did_you_mean(s[i], mb_stat_names, MB_S_COUNT);
          mbx_err(c, sat[i],
                  "unknown statistic '%s'%s%s%s (one of: mean sd se ci95 n median min max trmean)",
                  s[i], dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        } else
          t.stats[t.nstats++ % MB_S_COUNT] = k;
        free(s[i]);
      }
      free(s);
      free(sat);
      if (t.nstats > MB_S_COUNT) {
        mbx_err(c, mark_of(x), "too many statistics");
        t.nstats = MB_S_COUNT;
      }
      if (ns == 0)
        mbx_err(c, mark_of(x), "stats must name at least one statistic");
    } else {
      t.stats[0] = MB_S_MEAN;
      t.stats[1] = MB_S_SE;
      t.nstats = 2;
    }
    free(pr);
    PUSH(m->tables, m->ntables, t);
  }
}

/* A list of maps whose keys are the by-keys (values canonical, selecting
 * groups) or one of labels (free text): fit references, plot titles. */
static mb_ref *parse_refs(ctx *c, yaml_node_t *x, char **by, size_t nby, const char *const *labels,
                          const char *what, const char *each, size_t *nout)
{
  mb_matrix *m = c->m;
  mb_ref *out = NULL;
  *nout = 0;
  if (x->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(x), "%s must be a list of mappings", what);
    return NULL;
  }
  for (yaml_node_item_t *ri = x->data.sequence.items.start; ri < x->data.sequence.items.top; ri++) {
    yaml_node_t *re = node(c, *ri);
    if (!re)
      continue;
    if (re->type != YAML_MAPPING_NODE) {
      mbx_err(c, mark_of(re), "each %s must be a mapping", each);
      continue;
    }
    const char **allowed = NULL;
    size_t na = 0;
    for (size_t i = 0; i < nby; i++)
      PUSH(allowed, na, by[i]);
    for (size_t i = 0; labels[i]; i++)
      PUSH(allowed, na, labels[i]);
    size_t nr;
    pair_t *rp = mbx_pairs(c, re, allowed, na, each, &nr);
    mb_ref r = {NULL, NULL, 0};
    for (size_t i = 0; i < nr; i++) {
      const char *s = mbx_want_scalar(c, rp[i].v, rp[i].key);
      if (!s)
        continue;
      char *val = NULL;
      const mb_param *p = mbx_find_param(m->task, rp[i].key, NULL);
      int is_label = 0;
      for (size_t j = 0; labels[j]; j++)
        if (!strcmp(labels[j], rp[i].key))
          is_label = 1;
      if (!is_label) {
        if (!p && !strcmp(rp[i].key, "rep"))
          p = &mbx_rep_param;
        if (p)
          val = mbx_canon_node(c, p, rp[i].v);
      } else
        val = xstrdup(s);
      if (!val)
        continue;
      r.key = xrealloc(r.key, (r.n + 1) * sizeof *r.key);
      r.val = xrealloc(r.val, (r.n + 1) * sizeof *r.val);
      r.key[r.n] = xstrdup(rp[i].key);
      r.val[r.n++] = val;
    }
    free(rp);
    free(allowed);
    PUSH(out, *nout, r);
  }
  return out;
}

void mbx_parse_fits(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(v), "fits must be a list of mappings");
    return;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e)
      continue;
    if (e->type != YAML_MAPPING_NODE) {
      mbx_err(c, mark_of(e), "each fit must be a mapping");
      continue;
    }
    size_t np;
    pair_t *pr = mbx_pairs(c, e, fit_keys, count(fit_keys), "fit", &np);
    mb_fit f;
    memset(&f, 0, sizeof f);
    f.bootstrap = 1000;
    f.centers[0] = 0;
    f.ncenters = 1;
    f.name = mbx_want_name(c, pr, np, e, "fit");
    for (size_t i = 0; f.name && i < m->nfits; i++)
      if (m->fits[i].name && !strcmp(m->fits[i].name, f.name))
        mbx_err(c, mark_of(e), "duplicate fit name '%s'", f.name);
    yaml_node_t *x;
    if ((x = get(pr, np, "x", NULL))) {
      const char *s = mbx_want_scalar(c, x, "x");
      if (s) {
        const mb_param *p = mbx_want_param(c, s, mark_of(x), 0, "fit x");
        if (p && p->type != MB_INT && p->type != MB_REAL)
          mbx_err(c, mark_of(x), "fit x '%s' must be a numeric parameter", s);
        f.x = xstrdup(s);
      }
    } else
      mbx_err(c, mark_of(e), "fit has no 'x'");
    f.y = mbx_want_metric_node(c, pr, np, e, "y");
    if ((x = get(pr, np, "by", NULL))) {
      f.by = mbx_want_keys(c, x, "by", &f.nby);
    }
    if ((x = get(pr, np, "bootstrap", NULL))) {
      static const mb_param bp = {"bootstrap", MB_INT, NULL, 0, 1e6, NULL, NULL};
      char *s = mbx_canon_node(c, &bp, x);
      if (s) {
        f.bootstrap = atol(s);
        free(s);
      }
    }
    if (get(pr, np, "exclude", NULL))
      f.exclude = mbx_want_metric_node(c, pr, np, e, "exclude");
    if ((x = get(pr, np, "centers", NULL))) {
      size_t ns;
      mb_mark *sat;
      char **s = mbx_want_names_at(c, x, "centers", &ns, &sat);
      f.ncenters = 0;
      for (size_t i = 0; i < ns; i++) {
        int k = -1;
        for (int j = 0; center_names[j]; j++)
          if (!strcmp(s[i], center_names[j]))
            k = j;
        if (k < 0)
          mbx_err(c, sat[i], "unknown centre '%s' (one of: mean median trmean)", s[i]);
        else if (f.ncenters < 3)
          f.centers[f.ncenters++] = k;
        else
          mbx_err(c, sat[i], "at most 3 centres");
        free(s[i]);
      }
      free(s);
      free(sat);
      if (f.ncenters == 0) {
        mbx_err(c, mark_of(x), "centers must name at least one of mean median trmean");
        f.ncenters = 1;
      }
    }
    if ((x = get(pr, np, "references", NULL)))
      f.refs = parse_refs(c, x, f.by, f.nby, ref_labels, "references", "reference", &f.nrefs);
    free(pr);
    PUSH(m->fits, m->nfits, f);
  }
}

void mbx_parse_plots(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(v), "plots must be a list of mappings");
    return;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e)
      continue;
    if (e->type != YAML_MAPPING_NODE) {
      mbx_err(c, mark_of(e), "each plot must be a mapping");
      continue;
    }
    size_t np;
    pair_t *pr = mbx_pairs(c, e, plot_keys, count(plot_keys), "plot", &np);
    mb_plot p;
    memset(&p, 0, sizeof p);
    p.errorbars = MB_S_SE;
    p.name = mbx_want_name(c, pr, np, e, "plot");
    for (size_t i = 0; p.name && i < m->nplots; i++)
      if (m->plots[i].name && !strcmp(m->plots[i].name, p.name))
        mbx_err(c, mark_of(e), "duplicate plot name '%s'", p.name);
    yaml_node_t *x;
    yaml_node_t *xn = get(pr, np, "x", NULL);
    if ((x = xn)) {
      const char *s = mbx_want_scalar(c, x, "x");
      if (s && !strcmp(s, "@"))
        p.x = xstrdup(s);
      else if (s) {
        const mb_param *q = mbx_want_param(c, s, mark_of(x), 1, "plot x");
        if (q && q->type != MB_INT && q->type != MB_REAL)
          mbx_err(c, mark_of(x), "plot x '%s' must be a numeric parameter", s);
        p.x = xstrdup(s);
      }
    } else
      mbx_err(c, mark_of(e), "plot has no 'x'");
    p.y = mbx_want_metric_node(c, pr, np, e, "y");
    if (p.x && p.y && (!strcmp(p.x, "@") != (p.y[strlen(p.y) - 1] == '@')))
      mbx_err(c, mark_of(xn),
              "x '@' (the index) goes with a metric family y (NAME@), and only with one");
    if ((x = get(pr, np, "by", NULL))) {
      p.by = mbx_want_keys(c, x, "by", &p.nby);
    }
    if ((x = get(pr, np, "panels", NULL)))
      mbx_want_bool(c, x, "panels", &p.panels);
    if ((x = get(pr, np, "logx", NULL)))
      mbx_want_bool(c, x, "logx", &p.logx);
    if ((x = get(pr, np, "logy", NULL)))
      mbx_want_bool(c, x, "logy", &p.logy);
    if ((x = get(pr, np, "errorbars", NULL))) {
      const char *s = mbx_want_scalar(c, x, "errorbars");
      if (s) {
        if (!strcmp(s, "none"))
          p.errorbars = -1;
        else if (!strcmp(s, "sd"))
          p.errorbars = MB_S_SD;
        else if (!strcmp(s, "se"))
          p.errorbars = MB_S_SE;
        else if (!strcmp(s, "ci95"))
          p.errorbars = MB_S_CI95;
        else
          mbx_err(c, mark_of(x), "errorbars must be one of: none, sd, se, ci95; got '%s'", s);
      }
    }
    if ((x = get(pr, np, "fit", NULL))) {
      const char *s = mbx_want_scalar(c, x, "fit");
      if (s) {
        int found = 0;
        const char **names = NULL;
        size_t nn = 0;
        for (size_t i = 0; i < m->nfits; i++) {
          if (m->fits[i].name && !strcmp(m->fits[i].name, s))
            found = 1;
          if (m->fits[i].name)
            PUSH(names, nn, m->fits[i].name);
        }
        if (!found) {
          const char *dym = mb_did_you_mean(s, names, nn);
          mbx_err(c, mark_of(x), "plot refers to unknown fit '%s'%s%s%s", s,
                  dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        } else
          p.fit = xstrdup(s);
        free(names);
      }
    }
    static const char *const title_label[] = {"title", NULL};
    if ((x = get(pr, np, "titles", NULL)))
      p.titles = parse_refs(c, x, p.by, p.nby, title_label, "titles", "titles entry", &p.ntitles);
    const char *const lab[] = {"title", "xlabel", "ylabel"};
    char **dst[] = {&p.title, &p.xlabel, &p.ylabel};
    for (int i = 0; i < 3; i++)
      if ((x = get(pr, np, lab[i], NULL))) {
        const char *s = mbx_want_scalar(c, x, lab[i]);
        if (s)
          *dst[i] = xstrdup(s);
      }
    free(pr);
    PUSH(m->plots, m->nplots, p);
  }
}

/* ---- sequential and claims ---- */

/* sequential: {compare: [paired tables], half_width: W, max_replications: M, round: R} */
void mbx_parse_sequential(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  mb_sequential *q = &m->sequential;
  q->at = mark_of(v);
  if (v->type != YAML_MAPPING_NODE) {
    mbx_err(c, mark_of(v),
            "sequential must be a mapping (compare, half_width, max_replications, round)");
    return;
  }
  size_t np;
  pair_t *pr = mbx_pairs(c, v, sequential_keys, count(sequential_keys), "sequential", &np);
  yaml_node_t *x;
  q->half_width = NAN;
  q->round = 1;
  if ((x = get(pr, np, "compare", NULL))) {
    mb_mark *at;
    q->compare = mbx_want_names_at(c, x, "compare", &q->ncompare, &at);
    const char **names = NULL;
    size_t nn = 0;
    for (size_t i = 0; i < m->ntables; i++)
      if (m->tables[i].name)
        PUSH(names, nn, m->tables[i].name);
    for (size_t i = 0; i < q->ncompare; i++) {
      const mb_table *t = NULL;
      for (size_t j = 0; j < m->ntables; j++)
        if (m->tables[j].name && !strcmp(m->tables[j].name, q->compare[i]))
          t = &m->tables[j];
      if (!t) {
        const char *dym = nn ? mb_did_you_mean(q->compare[i], names, nn) : NULL;
        mbx_err(c, at[i], "compare names '%s', which is no table of this matrix%s%s%s",
                q->compare[i], dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
      } else if (!t->paired || t->reach)
        mbx_err(c, at[i], "compare names '%s', which is not a paired table (without reach)",
                q->compare[i]);
    }
    if (q->ncompare == 0 && x->type == YAML_SEQUENCE_NODE)
      mbx_err(c, mark_of(x), "compare must name at least one table");
    free(names);
    free(at);
  } else
    mbx_err(c, mark_of(v), "sequential has no 'compare' (the paired tables to resolve)");
  if ((x = get(pr, np, "half_width", NULL)))
    q->half_width = mbx_want_positive(c, x, "half_width");
  else
    mbx_err(c, mark_of(v),
            "sequential has no 'half_width' (stop once every interval is this narrow)");
  if ((x = get(pr, np, "max_replications", NULL))) {
    static const mb_param mp = {"max_replications", MB_INT, NULL, 2, 1e6, NULL, NULL};
    char *s = mbx_canon_node(c, &mp, x);
    if (s) {
      q->max_replications = atol(s);
      if (q->max_replications < m->replications)
        mbx_err(c, mark_of(x),
                "max_replications = %ld is below replications = %ld (the first round)",
                q->max_replications, m->replications);
    }
    free(s);
  } else
    mbx_err(c, mark_of(v), "sequential has no 'max_replications'");
  if ((x = get(pr, np, "round", NULL))) {
    static const mb_param rp = {"round", MB_INT, NULL, 1, 1e6, NULL, NULL};
    char *s = mbx_canon_node(c, &rp, x);
    if (s)
      q->round = atol(s);
    free(s);
  }
  if (m->replications < 2)
    mbx_err(c, mark_of(v),
            "sequential needs replications >= 2 (the first round: a paired sd needs two pairs)");
  free(pr);
  q->set = 1;
}

/* claims: [{claim, table, row, column, expect}]: each names a comparison
 * of a paired table (checked here: the table, the row value, the column
 * values; that the comparison has cells is checked after expansion). */
void mbx_parse_claims(ctx *c, yaml_node_t *v)
{
  mb_matrix *m = c->m;
  if (v->type != YAML_SEQUENCE_NODE) {
    mbx_err(c, mark_of(v), "claims must be a list of mappings");
    return;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(c, *it);
    if (!e)
      continue;
    if (e->type != YAML_MAPPING_NODE) {
      mbx_err(c, mark_of(e), "each claim must be a mapping {claim, table, row, expect}");
      continue;
    }
    size_t np;
    pair_t *pr = mbx_pairs(c, e, claim_keys, count(claim_keys), "claim", &np);
    mb_claim q;
    memset(&q, 0, sizeof q);
    q.at = mark_of(e);
    q.expect = -1;
    yaml_node_t *x;
    const char *s;
    if (!(x = get(pr, np, "claim", NULL)))
      mbx_err(c, mark_of(e), "claim entry has no 'claim' (the statement, as text)");
    else if ((s = mbx_want_scalar(c, x, "claim")))
      q.claim = xstrdup(s);
    const mb_table *t = NULL;
    if (!(x = get(pr, np, "table", NULL)))
      mbx_err(c, mark_of(e), "claim has no 'table' (a paired table of this matrix)");
    else if ((s = mbx_want_scalar(c, x, "table"))) {
      const char **names = NULL;
      size_t nn = 0;
      for (size_t i = 0; i < m->ntables; i++)
        if (m->tables[i].name)
          PUSH(names, nn, m->tables[i].name);
      for (size_t i = 0; i < m->ntables; i++)
        if (m->tables[i].name && !strcmp(m->tables[i].name, s))
          t = &m->tables[i];
      if (!t) {
        const char *dym = nn ? mb_did_you_mean(s, names, nn) : NULL;
        mbx_err(c, mark_of(x), "claim names table '%s', which is no table of this matrix%s%s%s", s,
                dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
      } else if (!t->paired || t->reach) {
        mbx_err(c, mark_of(x),
                "claim names table '%s', which is not a paired table (without reach)", s);
        t = NULL;
      } else
        q.table = xstrdup(s);
      free(names);
    }
    if (!(x = get(pr, np, "row", NULL)))
      mbx_err(c, mark_of(e), "claim has no 'row' (a value of the table's row key)");
    else if (t) {
      const mb_param *p = mbx_find_param(m->task, t->rows[0], NULL);
      if (!p && !strcmp(t->rows[0], "rep"))
        p = &mbx_rep_param;
      char *cv = p ? mbx_canon_node(c, p, x) : NULL;
      if (cv && !strcmp(cv, t->paired)) {
        mbx_err(c, mark_of(x),
                "claim row '%s' is the baseline of table '%s' (compare another row with it)", cv,
                t->name);
        free(cv);
      } else
        q.row = cv;
    }
    if ((x = get(pr, np, "column", NULL)) && t) {
      if (x->type != YAML_MAPPING_NODE)
        mbx_err(c, mark_of(x), "column must be a mapping of the table's column keys to values");
      else if (!t->ncols)
        mbx_err(c, mark_of(x), "column given, but table '%s' has no columns", t->name);
      else {
        size_t ncp;
        pair_t *cp = mbx_pairs(c, x, (const char *const *)t->cols, t->ncols, "column", &ncp);
        for (size_t k = 0; k < t->ncols; k++) {
          yaml_node_t *cv = get(cp, ncp, t->cols[k], NULL);
          if (!cv) {
            mbx_err(c, mark_of(x), "column has no value for '%s' (table '%s' has columns per %s)",
                    t->cols[k], t->name, t->cols[k]);
            continue;
          }
          const mb_param *p = mbx_find_param(m->task, t->cols[k], NULL);
          if (!p && !strcmp(t->cols[k], "rep"))
            p = &mbx_rep_param;
          char *val = p ? mbx_canon_node(c, p, cv) : NULL;
          if (!val)
            continue;
          q.column.key = xrealloc(q.column.key, (q.column.n + 1) * sizeof *q.column.key);
          q.column.val = xrealloc(q.column.val, (q.column.n + 1) * sizeof *q.column.val);
          q.column.key[q.column.n] = xstrdup(t->cols[k]);
          q.column.val[q.column.n++] = val;
        }
        free(cp);
      }
    } else if (t && t->ncols)
      mbx_err(c, mark_of(e),
              "claim has no 'column' (table '%s' has columns: give a value for each of its column "
              "keys)",
              t->name);
    if (!(x = get(pr, np, "expect", NULL)))
      mbx_err(c, mark_of(e), "claim has no 'expect' (lt0, gt0 or ne0)");
    else if ((s = mbx_want_scalar(c, x, "expect"))) {
      for (int k = 0; mb_expect_names[k]; k++)
        if (!strcmp(s, mb_expect_names[k]))
          q.expect = k;
      if (q.expect < 0)
        mbx_err(c, mark_of(x),
                "expect must be lt0, gt0 or ne0 (the paired difference below 0, above 0, or not "
                "0), got '%s'",
                s);
    }
    free(pr);
    PUSH(m->claims, m->nclaims, q);
  }
}

/* After expansion: every claim's comparison has cells. */
void mbx_check_claims(ctx *c)
{
  mb_matrix *m = c->m;
  for (size_t i = 0; i < m->nclaims; i++) {
    const mb_claim *q = &m->claims[i];
    const mb_table *t = NULL;
    for (size_t j = 0; j < m->ntables; j++)
      if (!strcmp(m->tables[j].name, q->table))
        t = &m->tables[j];
    int found = 0;
    for (size_t x = 0; x < m->ncells && !found; x++) {
      if (strcmp(mb_xcell_get(&m->cells[x], t->rows[0]), q->row))
        continue;
      int all = 1;
      for (size_t k = 0; k < q->column.n && all; k++)
        if (strcmp(mb_xcell_get(&m->cells[x], q->column.key[k]), q->column.val[k]))
          all = 0;
      found = all;
    }
    if (!found)
      mbx_err(c, q->at, "claim '%s': no cell of the matrix has %s=%s%s", q->claim, t->rows[0],
              q->row, q->column.n ? " in the column given" : "");
  }
}
