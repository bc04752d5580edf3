/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_matrix.c — the harness's building blocks in C: SHA-256 against the
 * FIPS 180-4 vectors, canonical value text, cell ids, did-you-mean, shards,
 * the JSON reader on valid and on every truncation of a result file, and
 * matrix loading through the API. Links its own one-task registry so it
 * does not depend on the other tasks in bench/tasks/tasks.c. */
#include <string.h>

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/json.h"
#include "harness/matrix.h"
#include "harness/results.h"
#include "sha256.h"
#include "tap.h"

extern const mb_task mb_task_selftest;

/* A stand-in with the parameters and metric the agreed format's example
 * (t/data/matrix/format-example.yaml, copied from FORMAT.md) uses, so the
 * harness is known to accept that file before the real task is merged. */
static const char *const experiments[] = {"thm1", "thm2", "thm3", "thm4", NULL};
static const mb_param synth_params[] = {
  {"experiment", MB_STR, "thm1", 0, -1, experiments, "which theorem"},
  {"n", MB_INT, "100", 2, 1e9, NULL, "sample size"},
  {"em_max_iter", MB_INT, "100", 1, 1e6, NULL, "EM iterations"},
  {"em_tol", MB_REAL, "1e-8", 0, 1, NULL, "EM tolerance"},
  {NULL, 0, NULL, 0, 0, NULL, NULL},
};
static const char *const synth_metrics[] = {"loss", NULL};
static int synth_run(const mb_cell *c, uint64_t seed, mb_result *r, char *err, size_t errlen)
{
  return mb_result_metric(r, "loss", 1.0 / (double)mb_cell_int(c, "n"));
}
static const mb_task fake_synthetic = {"synthetic", "stand-in", synth_params, synth_metrics, NULL, synth_run};

const mb_task *const mb_tasks[] = {&mb_task_selftest, &fake_synthetic, NULL};
const mb_task *mb_task_find(const char *name)
{
  for (const mb_task *const *t = mb_tasks; *t; t++)
    if (!strcmp((*t)->name, name)) return *t;
  return NULL;
}

static const mb_param *param(const char *name)
{
  for (const mb_param *p = mb_task_selftest.params; p->name; p++)
    if (!strcmp(p->name, name)) return p;
  return NULL;
}

static int canon_is(const char *key, const char *in, const char *want)
{
  char *out = NULL, why[256];
  int rc = mb_param_canon(param(key), in, &out, why, sizeof why);
  int pass = rc == 0 && out && !strcmp(out, want);
  ok(pass, "canon %s '%s' -> '%s'", key, in, want);
  if (!pass) diag("  got rc %d '%s' (%s)", rc, out ? out : "", rc ? why : "");
  free(out);
  return pass;
}

static int canon_fails(const char *key, const char *in, int want_rc, const char *msg)
{
  char *out = NULL, why[256] = "";
  int rc = mb_param_canon(param(key), in, &out, why, sizeof why);
  int pass = rc == want_rc && !out && !strcmp(why, msg);
  ok(pass, "canon %s '%s' rejected: %s", key, in, msg);
  if (!pass) diag("  got rc %d '%s'", rc, why);
  free(out);
  return pass;
}

int main(void)
{
  char hex[65];
  moei_sha256_hex("abc", 3, hex);
  ok(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256('abc')");
  moei_sha256_hex("", 0, hex);
  ok(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('')");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  moei_sha256_hex(two, strlen(two), hex);
  ok(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256(448-bit message)");
  {
    moei_sha256 s;
    unsigned char d[32], chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    moei_sha256_init(&s);
    for (int i = 0; i < 1000; i++) moei_sha256_update(&s, chunk, sizeof chunk);
    moei_sha256_final(&s, d);
    ok(d[0] == 0xcd && d[1] == 0xc7 && d[31] == 0xd0, "sha256(a million 'a') in 1000 updates");
  }

  canon_is("n", "100", "100");
  canon_is("n", "1e3", "1000");
  canon_is("n", "+7", "7");
  canon_is("x", "0.1", "0.1");
  canon_is("x", "2.3850", "2.385");
  canon_is("x", "1.0e-6", "1e-06");
  canon_is("x", "-0.0", "0");
  canon_is("x", "3", "3");
  canon_is("fail", "yes", "true");
  canon_is("fail", "Off", "false");
  canon_is("mode", "noisy", "noisy");
  canon_fails("n", "1.5", 1, "'n' must be an integer, got '1.5'");
  canon_fails("n", "0", 2, "'n' = 0 is out of range [1, 10000000]");
  canon_fails("x", "nan", 1, "'x' must be a finite real number, got 'nan'");
  canon_fails("x", "2e6", 2, "'x' = 2e6 is out of range [-1000000, 1000000]");
  canon_fails("fail", "2", 1, "'fail' must be true or false, got '2'");
  canon_fails("mode", "Plain", 2, "'mode' = 'Plain' is not one of: plain, noisy (did you mean 'plain'?)");

  const char *cands[] = {"replications", "exclude", "include", "axes", "gating"};
  ok(!strcmp(mb_did_you_mean("gatting", cands, 5), "gating"), "did you mean: one insertion");
  ok(!strcmp(mb_did_you_mean("axis", cands, 5), "axes"), "did you mean: one substitution");
  ok(!strcmp(mb_did_you_mean("replication", cands, 5), "replications"), "did you mean: truncated");
  ok(mb_did_you_mean("zzzz", cands, 5) == NULL, "did you mean: nothing close");

  /* ids depend on content only, not on the order values were set */
  mb_cell *a = mb_cell_new("selftest"), *b = mb_cell_new("selftest");
  mb_cell_set(a, "n", "10"); mb_cell_set(a, "x", "2.385"); mb_cell_set(a, "mode", "noisy");
  mb_cell_set(b, "mode", "noisy"); mb_cell_set(b, "x", "2.385"); mb_cell_set(b, "n", "10");
  char ia[13], ib[13], ic[13];
  mb_cell_id(a, 0, ia);
  mb_cell_id(b, 0, ib);
  ok(!strcmp(ia, ib) && strlen(ia) == 12, "id independent of insertion order (%s)", ia);
  mb_cell_id(b, 1, ic);
  ok(strcmp(ia, ic) != 0, "rep changes the id");
  mb_buf cb;
  mb_buf_init(&cb);
  mb_cell_canonical(a, 3, &cb);
  ok(!strcmp(cb.s, "task=selftest\nmode=noisy\nn=10\nx=2.385\nrep=3\n"), "canonical text");
  moei_sha256_hex(cb.s, cb.n, hex);
  char id3[13];
  mb_cell_id(a, 3, id3);
  ok(!strncmp(hex, id3, 12), "id = first 12 hex digits of SHA-256 of the canonical text");
  mb_buf_free(&cb);

  /* a copy is packed in one block; setting a value unpacks it, and both
   * the copy and the original keep their own values */
  mb_cell *pc = mb_cell_copy(a);
  ok(pc && mb_cell_size(pc) == 3 && !strcmp(mb_cell_str(pc, "x"), "2.385") && !strcmp(mb_cell_task(pc), "selftest"),
     "packed copy holds every value");
  size_t psz = mb_cell_packed_size(a), low = 6 * sizeof(char *) + 33;   /* 33: the 7 strings with their NULs */
  ok(psz >= low && psz <= low + 64, "packed size: arrays, strings and a small header (%zu bytes)", psz);
  ok(pc && !mb_cell_set(pc, "x", "7.5") && !mb_cell_set(pc, "k", "3") && mb_cell_size(pc) == 4 &&
     !strcmp(mb_cell_str(pc, "x"), "7.5") && !strcmp(mb_cell_str(pc, "mode"), "noisy") && !strcmp(mb_cell_key_at(pc, 0), "k"),
     "a packed cell can still be set (unpacked), in key order");
  ok(!strcmp(mb_cell_str(a, "x"), "2.385"), "the original is untouched");
  mb_cell *pc2 = pc ? mb_cell_copy(pc) : NULL;
  ok(pc2 && mb_cell_size(pc2) == 4 && !strcmp(mb_cell_str(pc2, "k"), "3"), "an unpacked copy packs again");
  mb_cell_free(pc2);
  mb_cell_free(pc);
  mb_cell_free(a);
  mb_cell_free(b);

  /* JSON: escapes round-trip; every truncation of a document is an error */
  mb_buf j;
  mb_buf_init(&j);
  mb_buf_puts(&j, "{\"s\": ");
  mb_buf_json_str(&j, "tab\there \"q\" back\\slash \x01 é");
  mb_buf_puts(&j, ", \"v\": ");
  mb_buf_json_num(&j, 2.385);
  mb_buf_puts(&j, ", \"w\": ");
  mb_buf_json_num(&j, 0.0 / 0.0);
  mb_buf_puts(&j, ", \"a\": [1, -2.5e-3, true, null, {}]}");
  char err[256];
  mb_json *doc = mb_json_parse(j.s, j.n, err, sizeof err);
  ok(doc != NULL, "parse what we wrote");
  ok(doc && !strcmp(mb_json_str(doc, "s"), "tab\there \"q\" back\\slash \x01 é"), "string round-trips");
  double v = 0, w = 0;
  ok(doc && mb_json_as_double(mb_json_get(doc, "v"), &v) && v == 2.385, "number round-trips");
  ok(doc && mb_json_as_double(mb_json_get(doc, "w"), &w) && isnan(w), "NaN as \"nan\"");
  const mb_json *arr = mb_json_get(doc, "a");
  ok(arr && arr->type == MB_J_ARR && arr->n == 5 && !strcmp(arr->items[1]->text, "-2.5e-3"), "array, number text kept");
  mb_json_free(doc);
  int all_fail = 1;
  for (size_t cut = 0; cut < j.n; cut++) {
    mb_json *t = mb_json_parse(j.s, cut, err, sizeof err);
    if (t) { all_fail = 0; diag("truncation at %zu parsed", cut); mb_json_free(t); }
  }
  ok(all_fail, "every truncation (%zu) is rejected", j.n);
  const char *bad[] = {"{\"a\" 1}", "[1,]", "{\"a\": tru}", "\"\\u12\"", "[1] x", "{\"a\": 01x}", "\"\\q\""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mb_json *t = mb_json_parse(bad[i], strlen(bad[i]), err, sizeof err);
    ok(t == NULL, "malformed %s: %s", bad[i], err);
    mb_json_free(t);
  }
  {
    char deep[200];
    memset(deep, '[', sizeof deep);
    mb_json *t = mb_json_parse(deep, sizeof deep, err, sizeof err);
    ok(t == NULL && strstr(err, "deep"), "nesting limit: %s", err);
  }
  mb_buf_free(&j);

  /* a matrix through the API */
  mb_matrix *m = NULL;
  mb_buf msgs;
  mb_buf_init(&msgs);
  is_int(mb_matrix_load(tap_datafile("data/matrix/good-basic.yaml"), &m, &msgs), 0, "load good-basic");
  ok(m && m->ncells == 18 && m->naxes == 2 && m->ntables == 1 && m->replications == 3, "18 cells, 2 axes, 1 table");
  if (m) {
    ok(m->cells[0].seed != m->cells[1].seed, "cells get distinct seeds");
    size_t idx[18], tot = 0;
    char seen[18] = {0};
    for (int s = 1; s <= 4; s++) {
      size_t k = mb_matrix_shard(m, s, 4, idx);
      for (size_t i = 0; i < k; i++) seen[idx[i]]++;
      tot += k;
    }
    int once = 1;
    for (int i = 0; i < 18; i++) once &= seen[i] == 1;
    ok(tot == 18 && once, "4 shards cover each cell exactly once");
    ok(!strcmp(mb_xcell_get(&m->cells[2], "rep"), "2") && !strcmp(mb_xcell_get(&m->cells[2], "n"), "10"),
       "mb_xcell_get: rep and a parameter");
    ok(m->tables[0].nstats == 3 && m->tables[0].stats[2] == MB_S_N, "table stats parsed");
    mb_cell *tc = mb_xcell_task_cell(m, &m->cells[2]);
    char before[13];
    mb_cell_id(m->cells[2].cell, m->cells[2].rep, before);
    ok(tc && !strcmp(mb_cell_str(tc, "rep"), "2") && mb_cell_size(tc) == mb_cell_size(m->cells[2].cell) + 2,
       "the task's view of a cell holds rep and matrix_seed");
    char ms[24];
    snprintf(ms, sizeof ms, "%llu", (unsigned long long)m->seed);
    ok(tc && !strcmp(mb_cell_str(tc, "matrix_seed"), ms) && mb_cell_matrix_seed(tc) == m->seed && mb_cell_rep(tc) == 2,
       "matrix_seed is the matrix's seed (%s); mb_cell_rep 2", ms);
    ok(tc && mb_cell_undeclared(tc) == NULL && mb_cell_int(tc, "n") == 10 && mb_cell_undeclared(tc) == NULL,
       "reading declared keys leaves mb_cell_undeclared NULL");
    ok(tc && mb_cell_int(tc, "nn") == 0 && mb_cell_undeclared(tc) && !strcmp(mb_cell_undeclared(tc), "nn") &&
           mb_cell_real(tc, "other") == 0 && !strcmp(mb_cell_undeclared(tc), "nn"),
       "reading an undeclared key is recorded (the first one: 'nn')");
    ok(!strcmp(before, m->cells[2].id) && mb_cell_str(m->cells[2].cell, "rep") == NULL, "...but the stored cell (and id) do not");
    mb_cell_free(tc);
  }
  mb_matrix_free(m);
  mb_buf_free(&msgs);
  mb_buf_init(&msgs);
  /* the agreed format's example, verbatim: 4 x 5 x 40 cells, + 40 included,
   * - 2 x 40 excluded = 760 */
  is_int(mb_matrix_load(tap_datafile("data/matrix/format-example.yaml"), &m, &msgs), 0, "FORMAT.md example loads");
  if (msgs.n) diag("%s", msgs.s);
  ok(m && m->ncells == 760, "760 cells (%zu)", m ? m->ncells : 0);
  if (m) {
    size_t big = 0, thm3small = 0;
    for (size_t i = 0; i < m->ncells; i++) {
      const char *e = mb_xcell_get(&m->cells[i], "experiment"), *nn = mb_xcell_get(&m->cells[i], "n");
      if (!strcmp(nn, "100000")) big += !strcmp(e, "thm4");
      if (!strcmp(e, "thm3") && (!strcmp(nn, "100") || !strcmp(nn, "178"))) thm3small++;
    }
    ok(big == 40 && thm3small == 0, "include added 40 thm4 n=100000 cells, exclude removed thm3 n<=178");
    ok(!strcmp(mb_xcell_get(&m->cells[0], "em_tol"), "1e-06") && !strcmp(mb_xcell_get(&m->cells[0], "em_max_iter"), "1000"),
       "base applied (canonical 1e-06)");
    ok(m->ntables == 1 && m->nfits == 1 && m->nplots == 1, "table, fit, plot");
    ok(m->fits[0].bootstrap == 2000 && m->fits[0].nrefs == 2 && m->fits[0].nby == 1, "fit: bootstrap, references, by");
    ok(m->plots[0].logx && m->plots[0].logy && m->plots[0].errorbars == MB_S_SE && !strcmp(m->plots[0].fit, "rates"),
       "plot options");
  }
  mb_matrix_free(m);
  mb_buf_free(&msgs);
  mb_buf_init(&msgs);
  is_int(mb_matrix_load(tap_datafile("data/matrix/err-cross.yaml"), &m, &msgs), 2, "invalid matrix: 2");
  ok(m == NULL && msgs.s && strstr(msgs.s, "err-cross.yaml:7:13: k=8 must not exceed e=4"), "message with position");
  mb_buf_free(&msgs);
  mb_buf_init(&msgs);
  is_int(mb_matrix_load("/nonexistent/m.yaml", &m, &msgs), 2, "missing file: 2");
  ok(msgs.s && strstr(msgs.s, "/nonexistent/m.yaml: cannot open"), "missing file message");
  mb_buf_free(&msgs);
  /* result files: write, read back bit for bit, every truncation rejected */
  {
    mb_matrix *mm = NULL;
    mb_buf e2;
    mb_buf_init(&e2);
    mb_matrix_load(tap_datafile("data/matrix/good-basic.yaml"), &mm, &e2);
    mb_buf_free(&e2);
    char dir[] = "/tmp/mbtest-XXXXXX", path[256], tmpf[512], host[256] = "localhost";
    ok(mm && mkdtemp(dir) != NULL, "temp dir");
    if (mm) {
      mb_result *r = mb_result_new();
      mb_result_metric(r, "value", 2.385);
      mb_result_metric(r, "draw_mean", 0.1 + 0.2);
      mb_result_metric(r, "nan_metric", 0.0 / 0.0);
      mb_result_note(r, "why", "line1\nline2 \"quoted\"");
      mb_buf b, prov;
      mb_buf_init(&b);
      mb_buf_init(&prov);
      mb_provenance(&prov, 1);
      mb_result_json(&b, mm, &mm->cells[4], "ok", NULL, r, "2026-01-01T00:00:00Z", 0.5, 0.25, prov.s);
      snprintf(path, sizeof path, "%s/%s.json", dir, mm->cells[4].id);
      ok(mb_write_atomic(path, b.s, b.n, err, sizeof err) == 0, "atomic write");
      mb_rfile rf;
      is_int(mb_rfile_load(path, &rf, err, sizeof err), 0, "read back");
      double v1 = 0, v2 = 0, v3 = 0;
      ok(rf.ok && !strcmp(rf.id, mm->cells[4].id) && rf.nm == 3, "status, id, 3 metrics");
      ok(mb_rfile_metric(&rf, "value", &v1) && v1 == 2.385 && mb_rfile_metric(&rf, "draw_mean", &v2) && v2 == 0.1 + 0.2,
         "metrics round-trip bit for bit");
      ok(mb_rfile_metric(&rf, "nan_metric", &v3) && isnan(v3), "NaN metric round-trips");
      const mb_json *cfg = mb_json_get(rf.doc, "config");
      ok(cfg && mb_json_get(cfg, "x") && !strcmp(mb_json_get(cfg, "x")->text, "2.385") &&
         mb_json_get(cfg, "fail")->type == MB_J_BOOL && !strcmp(mb_json_str(cfg, "mode"), "noisy"), "typed config");
      ok(!strcmp(mb_json_str(mb_json_get(rf.doc, "notes"), "why"), "line1\nline2 \"quoted\""), "note escapes");
      mb_rfile_free(&rf);
      int all = 1;
      for (size_t cut = 0; cut + 1 < b.n; cut++) {   /* all but the final newline */
        FILE *f = fopen(path, "wb");
        fwrite(b.s, 1, cut, f);
        fclose(f);
        int rc = mb_rfile_load(path, &rf, err, sizeof err);
        if (rc != 1) { all = 0; diag("truncated at %zu: rc %d", cut, rc); }
        else if (!strstr(err, path)) { all = 0; diag("message lacks the file name: %s", err); }
        mb_rfile_free(&rf);
      }
      ok(all, "every truncation (%zu) is a corrupt file, named in the message", b.n - 1);
      unlink(path);
      is_int(mb_rfile_load(path, &rf, err, sizeof err), -1, "missing file: -1");
      mb_buf fb;
      mb_buf_init(&fb);
      mb_result_json(&fb, mm, &mm->cells[4], "failed", "boom \"x\"", NULL, "", 0, 0, prov.s);
      mb_write_atomic(path, fb.s, fb.n, err, sizeof err);
      ok(mb_rfile_load(path, &rf, err, sizeof err) == 0 && !rf.ok && rf.error && !strcmp(rf.error, "boom \"x\"") && rf.nm == 0,
         "a failed result: status failed, the error, no metrics");
      mb_rfile_free(&rf);
      mb_buf_free(&fb);
      unlink(path);

      /* temp files: a dead process's is removed, a live one's and another host's are kept */
      if (gethostname(host, sizeof host - 1)) snprintf(host, sizeof host, "localhost");
      const char *names[3];
      char n1[300], n2[300], n3[300];
      snprintf(n1, sizeof n1, ".a.json.tmp.%s.%ld", host, (long)getpid());
      snprintf(n2, sizeof n2, ".b.json.tmp.%s.%ld", host, 999999999L);
      snprintf(n3, sizeof n3, ".c.json.tmp.%s-elsewhere.%ld", host, 999999999L);
      names[0] = n1; names[1] = n2; names[2] = n3;
      for (int i = 0; i < 3; i++) {
        snprintf(tmpf, sizeof tmpf, "%s/%s", dir, names[i]);
        FILE *f = fopen(tmpf, "w");
        if (f) fclose(f);
      }
      is_int(mb_clean_temps(dir), 1, "one stale temp file removed");
      int kept = 0;
      for (int i = 0; i < 3; i++) {
        snprintf(tmpf, sizeof tmpf, "%s/%s", dir, names[i]);
        kept += access(tmpf, F_OK) == 0;
        unlink(tmpf);
      }
      is_int(kept, 2, "the live process's and the other host's kept");
      rmdir(dir);
      mb_buf_free(&b);
      mb_buf_free(&prov);
      mb_result_free(r);
    }
    mb_matrix_free(mm);
  }
  return tap_done();
}
