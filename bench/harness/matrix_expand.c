/* SPDX-License-Identifier: GPL-3.0-or-later */
/* matrix_expand.c — a matrix's cells: the Cartesian product of its axes
 * over the task's defaults and base, replications innermost, include and
 * exclude applied; each cell's id (a hash of its canonical text) and seed;
 * the task's own checks; shards (matrix_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "matrix_int.h"
#include "moe/rng.h"
#include "sha256.h"

typedef struct {
  const char *id;
  size_t i;
} idpos_t;

/* Bytes this process may still allocate: the smaller of what `ulimit -v`
 * (RLIMIT_AS) leaves above the current size and the system's available
 * memory plus free swap; what in *why. 0 if neither is known. */
static double memory_available(const char **why)
{
  double best = 0;
  *why = "";
  struct rlimit rl;
  long page = sysconf(_SC_PAGESIZE);
  if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY && page > 0) {
    unsigned long vm = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
      if (fscanf(f, "%lu", &vm) != 1)
        vm = 0;
      fclose(f);
    }
    double left = (double)rl.rlim_cur - (double)vm * (double)page;
    best = left > 0 ? left : 1;
    *why = "the address-space limit, ulimit -v";
  }
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    double avail = -1, swap = 0, kb;
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
        avail = kb * 1024;
      else if (sscanf(line, "SwapFree: %lf kB", &kb) == 1)
        swap = kb * 1024;
    }
    fclose(f);
    if (avail >= 0 && (best == 0 || avail + swap < best)) {
      best = avail + swap;
      *why = "available memory and free swap";
    }
  }
  return best;
}

/* ---- expansion ---- */

static mb_xcell new_xcell(const mb_matrix *m, const mb_cell *proto, const mb_mark *where, long rep)
{
  mb_xcell x;
  memset(&x, 0, sizeof x);
  x.cell = mb_cell_copy(proto);
  if (!x.cell)
    mb_oom(mb_cell_packed_size(proto));
  x.where = xrealloc(NULL, m->nparams * sizeof *x.where);
  memcpy(x.where, where, m->nparams * sizeof *x.where);
  x.rep = rep;
  snprintf(x.reptext, sizeof x.reptext, "%ld", rep);
  return x;
}

static void set_val(const mb_matrix *m, mb_xcell *x, const char *key, const char *val, mb_mark at)
{
  size_t idx;
  if (!strcmp(key, "rep")) {
    x->rep = atol(val);
    snprintf(x->reptext, sizeof x->reptext, "%ld", x->rep);
    return;
  }
  if (!mbx_find_param(m->task, key, &idx))
    return;
  /* set unpacks the cell; pack it again so it stays small */
  if (mb_cell_set(x->cell, key, val))
    mb_oom(0);
  mb_cell *packed = mb_cell_copy(x->cell);
  if (!packed)
    mb_oom(0);
  mb_cell_free(x->cell);
  x->cell = packed;
  x->where[idx] = at;
}

const char *mb_xcell_get(const mb_xcell *x, const char *key)
{
  if (!strcmp(key, "rep"))
    return x->reptext;
  return mb_cell_str(x->cell, key);
}

mb_cell *mb_xcell_task_cell(const mb_matrix *m, const mb_xcell *x)
{
  char seed[24];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
  mb_cell *c = mb_cell_copy(x->cell);
  if (!c || mb_cell_set(c, "rep", x->reptext) || mb_cell_set(c, "matrix_seed", seed))
    mb_oom(0);
  return c;
}

static int kvl_matches(const mb_xcell *x, const mb_kvl *kv)
{
  const char *v = mb_xcell_get(x, kv->key);
  if (!v)
    return 0;
  for (size_t i = 0; i < kv->n; i++)
    if (!strcmp(v, kv->val[i]))
      return 1;
  return 0;
}

static int is_axis(const mb_matrix *m, const char *key)
{
  if (!strcmp(key, "rep"))
    return 1;
  for (size_t i = 0; i < m->naxes; i++)
    if (!strcmp(m->axes[i].key, key))
      return 1;
  return 0;
}

void mbx_xcell_free(mb_xcell *x)
{
  mb_cell_free(x->cell);
  free(x->where);
}

void mb_cell_canonical(const mb_cell *c, long rep, mb_buf *out)
{
  mb_buf_printf(out, "task=%s\n", mb_cell_task(c));
  for (size_t i = 0; i < mb_cell_size(c); i++)
    mb_buf_printf(out, "%s=%s\n", mb_cell_key_at(c, i), mb_cell_value_at(c, i));
  mb_buf_printf(out, "rep=%ld\n", rep);
}

void mb_cell_id(const mb_cell *c, long rep, char id[13])
{
  mb_buf b;
  char hex[65];
  mb_buf_init(&b);
  mb_cell_canonical(c, rep, &b);
  if (b.oom)
    mb_oom(0);
  moei_sha256_hex(b.s, b.n, hex);
  mb_buf_free(&b);
  memcpy(id, hex, 12);
  id[12] = 0;
}

static int idpos_cmp(const void *a, const void *b)
{
  const idpos_t *x = a, *y = b;
  int d = strcmp(x->id, y->id);
  return d ? d : (x->i > y->i) - (x->i < y->i);
}

void mbx_expand(ctx *c)
{
  mb_matrix *m = c->m;
  const mb_task *t = m->task;
  mb_mark *where = xrealloc(NULL, m->nparams * sizeof *where);
  mb_cell *proto = mb_cell_new(t->name);
  if (!proto)
    mb_oom(0);
  size_t i = 0;
  for (const mb_param *p = t->params; p->name; p++, i++) {
    where[i].line = where[i].col = 0;
    if (!p->deflt)
      continue;
    char *v, why[512];
    if (mb_param_canon(p, p->deflt, &v, why, sizeof why)) {
      mbx_err(c, m->task_at, "task '%s' declares an invalid default: %s", t->name, why);
      continue;
    }
    mb_cell_set(proto, p->name, v);
    free(v);
  }
  for (i = 0; i < m->nbase; i++) {
    size_t idx;
    if (!mbx_find_param(t, m->base[i].key, &idx))
      continue;
    mb_cell_set(proto, m->base[i].key, m->base[i].val[0]);
    where[idx] = m->base[i].at[0];
  }

  /* Cartesian product, first axis slowest, replications innermost. */
  double total = (double)m->replications;
  for (i = 0; i < m->naxes; i++)
    total *= (double)m->axes[i].n;
  if (total > 1e7) {
    mbx_err(c, m->task_at, "the matrix expands to %.0f cells (more than 10 million)", total);
    goto done;
  }
  /* What expanding will take, from the layout below (the cell array grows
   * by doubling; a packed cell, its marks, the id sort), refused up front
   * with the numbers rather than dying halfway. */
  {
    double vlen = 0;
    for (i = 0; i < m->naxes; i++) {
      size_t w = 0;
      for (size_t j = 0; j < m->axes[i].n; j++)
        if (strlen(m->axes[i].val[j]) > w)
          w = strlen(m->axes[i].val[j]);
      vlen += (double)w;
    }
    double per = 2.0 * sizeof(mb_xcell) + (double)mb_cell_packed_size(proto) + vlen + 32 +
                 (double)(m->nparams * sizeof(mb_mark)) + 32 + sizeof(idpos_t) + 1 +
                 2 * sizeof(size_t);
    const char *why;
    double need = total * per, avail = memory_available(&why);
    if (avail > 0 && need > avail) {
      mbx_err(c, m->task_at,
              "the matrix expands to %.0f cells, which need about %.0f MB to expand, more than the "
              "%.0f MB left (%s): split it into smaller matrices",
              total, need / 1048576, avail / 1048576, why);
      goto done;
    }
  }
  size_t ncombo = 1;
  for (i = 0; i < m->naxes; i++)
    ncombo *= m->axes[i].n;
  mb_xcell *cells = NULL;
  size_t n = 0;
  mb_cell *work = mb_cell_copy(proto);
  mb_mark *wwhere = xrealloc(NULL, (m->nparams ? m->nparams : 1) * sizeof *wwhere);
  if (!work)
    mb_oom(0);
  for (size_t k = 0; k < ncombo; k++) {
    size_t rest = k;
    memcpy(wwhere, where, m->nparams * sizeof *where);
    for (size_t a = m->naxes; a-- > 0;) {
      size_t v = rest % m->axes[a].n, idx;
      rest /= m->axes[a].n;
      if (!mbx_find_param(t, m->axes[a].key, &idx))
        continue;
      if (mb_cell_set(work, m->axes[a].key, m->axes[a].val[v]))
        mb_oom(0);
      wwhere[idx] = m->axes[a].at[v];
    }
    mb_xcell x = new_xcell(m, work, wwhere, 0);
    for (long r = 0; r < m->replications; r++) {
      mb_xcell y = r + 1 < m->replications ? new_xcell(m, x.cell, x.where, r) : x;
      y.rep = r;
      snprintf(y.reptext, sizeof y.reptext, "%ld", r);
      PUSH(cells, n, y);
    }
  }
  mb_cell_free(work);
  free(wwhere);

  /* include: override matching cells, or add new ones */
  for (size_t q = 0; q < m->ninclude; q++) {
    const mb_map *mp = &m->include[q];
    size_t matched = 0;
    for (size_t j = 0; j < n; j++) {
      int all = 1;
      for (size_t k = 0; k < mp->n && all; k++)
        if (is_axis(m, mp->kv[k].key) && !kvl_matches(&cells[j], &mp->kv[k]))
          all = 0;
      if (!all)
        continue;
      matched++;
      for (size_t k = 0; k < mp->n; k++)
        if (!is_axis(m, mp->kv[k].key))
          set_val(m, &cells[j], mp->kv[k].key, mp->kv[k].val[0], mp->kv[k].at[0]);
    }
    if (matched)
      continue;
    long r0 = 0, r1 = m->replications;
    for (size_t k = 0; k < mp->n; k++)
      if (!strcmp(mp->kv[k].key, "rep")) {
        r0 = atol(mp->kv[k].val[0]);
        r1 = r0 + 1;
      }
    for (long r = r0; r < r1; r++) {
      mb_xcell x = new_xcell(m, proto, where, r);
      for (size_t k = 0; k < mp->n; k++)
        set_val(m, &x, mp->kv[k].key, mp->kv[k].val[0], mp->kv[k].at[0]);
      x.rep = r;
      snprintf(x.reptext, sizeof x.reptext, "%ld", r);
      PUSH(cells, n, x);
    }
  }

  /* exclude: drop cells matching every key of some map */
  size_t *hits = m->nexclude ? xrealloc(NULL, m->nexclude * sizeof *hits) : NULL;
  for (size_t q = 0; q < m->nexclude; q++)
    hits[q] = 0;
  size_t kept = 0;
  for (size_t j = 0; j < n; j++) {
    int drop = 0;
    for (size_t q = 0; q < m->nexclude; q++) {
      int all = 1;
      for (size_t k = 0; k < m->exclude[q].n && all; k++)
        if (!kvl_matches(&cells[j], &m->exclude[q].kv[k]))
          all = 0;
      if (all) {
        hits[q]++;
        drop = 1;
      }
    }
    if (drop)
      mbx_xcell_free(&cells[j]);
    else
      cells[kept++] = cells[j];
  }
  n = kept;
  for (size_t q = 0; q < m->nexclude; q++)
    if (!hits[q])
      mbx_warn(c, m->exclude[q].at, "this exclude entry matches no cell");
  free(hits);
  if (n == 0)
    mbx_err(c, m->task_at, "the matrix has no cells (everything was excluded)");

  /* ids, seeds, required parameters, cross-field checks, duplicates */
  size_t dups = 0;
  for (size_t j = 0; j < n; j++)
    mb_cell_id(cells[j].cell, cells[j].rep, cells[j].id);
  /* duplicates: sort by (id, position), keep the first of each id */
  char *dup = xrealloc(NULL, n ? n : 1);
  memset(dup, 0, n ? n : 1);
  {
    idpos_t *v = xrealloc(NULL, (n ? n : 1) * sizeof *v);
    for (size_t j = 0; j < n; j++) {
      v[j].id = cells[j].id;
      v[j].i = j;
    }
    qsort(v, n, sizeof *v, idpos_cmp);
    for (size_t j = 1; j < n; j++)
      if (!strcmp(v[j].id, v[j - 1].id))
        dup[v[j].i] = 1;
    free(v);
  }
  kept = 0;
  for (size_t j = 0; j < n; j++) {
    mb_xcell *x = &cells[j];
    if (dup[j]) {
      dups++;
      mbx_xcell_free(x);
      continue;
    }
    x->seed = moe_seed_derive(m->seed, x->id);
    int complete = 1;
    for (const mb_param *p = t->params; p->name; p++)
      if (!mb_cell_str(x->cell, p->name)) {
        mbx_err(c, m->task_at,
                "parameter '%s' of task '%s' has no default: set it in base, axes or include",
                p->name, t->name);
        complete = 0;
      }
    if (complete && t->check) {
      const char *bad = NULL;
      char msg[512] = "";
      mb_cell *withrep = mb_xcell_task_cell(m, x);
      int failed = t->check(withrep, &bad, msg, sizeof msg);
      if (!failed && mb_cell_undeclared(withrep)) {
        snprintf(msg, sizeof msg,
                 "task '%s' read parameter '%s', which it does not declare (a bug in the task)",
                 t->name, mb_cell_undeclared(withrep));
        failed = 1;
        bad = NULL;
      }
      mb_cell_free(withrep);
      if (failed) {
        size_t idx;
        mb_mark at = m->task_at;
        if (bad && mbx_find_param(t, bad, &idx) && x->where[idx].line > 0)
          at = x->where[idx];
        else if (bad) {
          mbx_err(c, at, "%s (from the default of '%s')", msg, bad);
          goto next;
        }
        mbx_err(c, at, "%s", msg);
      }
    }
  next:
    cells[kept++] = *x;
  }
  n = kept;
  free(dup);
  if (dups)
    mbx_warn(c, m->task_at, "%zu duplicate cells (same configuration) were dropped", dups);
  m->cells = cells;
  m->ncells = n;
done:
  mb_cell_free(proto);
  free(where);
}

size_t mb_matrix_shard(const mb_matrix *m, int i, int n, size_t *idx)
{
  idpos_t *v = xrealloc(NULL, (m->ncells ? m->ncells : 1) * sizeof *v);
  for (size_t k = 0; k < m->ncells; k++) {
    v[k].id = m->cells[k].id;
    v[k].i = k;
  }
  qsort(v, m->ncells, sizeof *v, idpos_cmp);
  char *mine = calloc(m->ncells ? m->ncells : 1, 1);
  if (!mine)
    mb_oom(m->ncells);
  for (size_t p = 0; p < m->ncells; p++)
    if ((int)(p % (size_t)n) == i - 1)
      mine[v[p].i] = 1;
  size_t k = 0;
  for (size_t p = 0; p < m->ncells; p++)
    if (mine[p])
      idx[k++] = p;
  free(mine);
  free(v);
  return k;
}
