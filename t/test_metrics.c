/* SPDX-License-Identifier: GPL-3.0-or-later */
/* test_metrics.c — router metrics: hand cases, golden values from
 * t/gen_metrics_fixtures.py (Python sets), error paths. */
#include <stdlib.h>
#include "moe/error.h"
#include "moe/metrics.h"
#include "tap.h"

static void golden(void)
{
  FILE *f = fopen(tap_datafile("data/metrics.txt"), "r");
  if (!ok(f != NULL, "open golden file %s", tap_datafile("data/metrics.txt"))) return;
  char line[256];
  if (!fgets(line, sizeof line, f)) { fclose(f); return; }  /* header */
  int N, k, E, cases = 0;
  while (fscanf(f, " case %d %d %d", &N, &k, &E) == 3) {
    int *a = malloc(sizeof(int) * N * k), *fin = malloc(sizeof(int) * N * k),
        *nxt = malloc(sizeof(int) * N * k);
    for (int i = 0; i < N * k; i++) if (fscanf(f, "%d", &a[i]) != 1) goto bad;
    for (int i = 0; i < N * k; i++) if (fscanf(f, "%d", &fin[i]) != 1) goto bad;
    for (int i = 0; i < N * k; i++) if (fscanf(f, "%d", &nxt[i]) != 1) goto bad;
    double sat, cr, jain, got;
    if (fscanf(f, "%lf %lf %lf", &sat, &cr, &jain) != 3) goto bad;
    ok(moe_metrics_saturation(a, fin, N, k, E, &got) == MOE_OK, "case %d saturation runs", cases);
    is_close(got, sat, 1e-14, 0, "case %d saturation vs Python", cases);
    ok(moe_metrics_change_rate(a, nxt, N, k, E, &got) == MOE_OK, "case %d change rate runs", cases);
    is_close(got, cr, 1e-14, 0, "case %d change rate vs Python", cases);
    double *cnt = malloc(sizeof(double) * E);
    moe_metrics_expert_counts(a, NULL, N, k, E, cnt, NULL);
    ok(moe_metrics_jain(cnt, E, &got) == MOE_OK, "case %d jain runs", cases);
    is_close(got, jain, 1e-13, 0, "case %d jain of load vs NumPy", cases);
    free(cnt);
    cases++;
  bad:
    free(a); free(fin); free(nxt);
  }
  fclose(f);
  is_int(cases, 5, "all golden cases read (the last with duplicate experts in a row)");
}

int main(void)
{
  /* hand case: N=2, k=2. token0 {0,1} -> final {1,2}: overlap 1;
   * token1 {3,2} -> final {2,3}: overlap 2. Sat = (1/2 + 2/2)/2 = 0.75.
   * change rate t -> next with next = final: |{2}\{0,1}|=1, |{}|=0 -> 0.25 */
  int t[] = {0, 1, 3, 2}, fin[] = {1, 2, 2, 3};
  double v;
  ok(moe_metrics_saturation(t, fin, 2, 2, 4, &v) == MOE_OK, "saturation ok");
  is_close(v, 0.75, 1e-15, 0, "saturation hand case");
  moe_metrics_change_rate(t, fin, 2, 2, 4, &v);
  is_close(v, 0.25, 1e-15, 0, "change rate hand case");
  moe_metrics_saturation(t, t, 2, 2, 4, &v);
  is_close(v, 1.0, 0, 0, "saturation of a record with itself is 1");
  moe_metrics_change_rate(t, t, 2, 2, 4, &v);
  is_close(v, 0.0, 0, 0, "change rate of a record with itself is 0");

  /* Jain: (1+2+3+4)^2 / (4*(1+4+9+16)) = 100/120 */
  double r[] = {1, 2, 3, 4}, eq[] = {2.385, 2.385, 2.385}, one[] = {0, 0, 5.5};
  moe_metrics_jain(r, 4, &v);
  is_close(v, 100.0 / 120.0, 1e-15, 0, "jain hand case");
  moe_metrics_jain(eq, 3, &v);
  is_close(v, 1.0, 1e-15, 0, "jain of equal shares is 1");
  moe_metrics_jain(one, 3, &v);
  is_close(v, 1.0 / 3.0, 1e-15, 0, "jain of one busy expert is 1/n");

  /* load with weights */
  float w[] = {0.25f, 0.75f, 0.5f, 0.5f};
  double c[4], wt[4];
  ok(moe_metrics_expert_counts(t, w, 2, 2, 4, c, wt) == MOE_OK, "load ok");
  ok(c[0] == 1 && c[1] == 1 && c[2] == 1 && c[3] == 1, "load counts");
  is_close(wt[1], 0.75, 0, 0, "load weight of expert 1");
  is_close(wt[2], 0.5, 0, 0, "load weight of expert 2");

  golden();

  /* error paths */
  int bad[] = {0, 9};
  is_int(moe_metrics_saturation(bad, fin, 1, 2, 4, &v), MOE_ERANGE, "expert id out of range");
  ok(strstr(moe_last_error(), "expert 9") != NULL, "message names the bad id: %s", moe_last_error());
  is_int(moe_metrics_saturation(t, fin, 2, 5, 4, &v), MOE_EINVAL, "k > E rejected");
  is_int(moe_metrics_saturation(NULL, fin, 2, 2, 4, &v), MOE_EINVAL, "NULL record rejected");
  is_int(moe_metrics_change_rate(t, fin, 0, 2, 4, &v), MOE_EINVAL, "N = 0 rejected");
  double z[] = {0, 0}, nanr[] = {1, NAN}, neg[] = {1, -1};
  is_int(moe_metrics_jain(z, 2, &v), MOE_EDOM, "jain of zeros rejected");
  is_int(moe_metrics_jain(nanr, 2, &v), MOE_EDOM, "jain with NaN rejected");
  is_int(moe_metrics_jain(neg, 2, &v), MOE_EDOM, "jain with negative share rejected");
  is_int(moe_metrics_expert_counts(t, w, 2, 2, 4, c, NULL), MOE_EINVAL, "weights without output rejected");
  return tap_done();
}
