/* SPDX-License-Identifier: GPL-3.0-or-later */
/* layer-demo.c: train one DeepSeekMoE layer (1 shared + 4 routed experts,
 * 2 chosen per token by DeepSeek-V3 routing) to fit a random target, then
 * read its routing record.
 *   cc -std=c11 layer-demo.c $(pkg-config --cflags --libs libmoe) */
#include <stdio.h>
#include <moe/moe.h>
#include <moe/metrics.h>

enum { T = 8, D = 6, E = 4, K = 2, S = 1, F = 12, STEPS = 30 };

int main(void)
{
  int rc = MOE_OK;
  moe_layer *layer = NULL;
  moe_optim *opt = NULL;
  gsl_rng *r = NULL;
  float x[T * D], target[T * D]; /* (T, D) */
  float y[T * D], dy[T * D];     /* (T, D) */
  double loss = 0.0, first = 0.0;

  if (!moe_version_check(MOE_VERSION_MAJOR)) {
    fprintf(stderr, "libmoe %s does not match these headers\n", moe_version());
    return 1;
  }
  printf("libmoe %s\n", moe_version());

  moe_layer_config cfg =
      moe_layer_config_default((moe_layer_sizes){.D = D, .E = E, .K = K, .S = S, .F = F});
  if ((rc = moe_gate_preset("deepseek_v3", &cfg.gate)) != MOE_OK)
    goto out;
  cfg.combine = MOE_COMBINE_ADDITIVE;
  cfg.expert.act = MOE_ACT_SILU;

  moe_layer_config bad = cfg; /* errors are returned, never fatal */
  bad.K = E + 1;
  printf("K = E + 1: %s: %s\n", moe_strerror(moe_layer_check(&bad)), moe_last_error());

  layer = moe_layer_alloc(&cfg, T);
  r = moe_rng_alloc(moe_seed_derive(2385, "demo"));
  moe_optim_config oc = moe_optim_defaults(MOE_OPTIM_ADAMW);
  if (layer && r)
    opt = moe_optim_alloc(&oc, moe_layer_param_count(layer));
  if (!opt) { /* NULL: moe_last_error() says why */
    rc = MOE_ENOMEM;
    goto out;
  }
  if ((rc = moe_layer_init_params(layer, r)) != MOE_OK)
    goto out;
  moe_rng_normal_f32(r, x, T * D, 1.0);
  moe_rng_normal_f32(r, target, T * D, 0.5);

  for (int step = 0; step < STEPS; step++) {
    moe_layer_zero_grad(layer);
    if ((rc = moe_layer_forward(layer, T, x, y)) != MOE_OK ||
        (rc = moe_loss_mse(T * D, y, target, &loss, dy)) != MOE_OK ||
        (rc = moe_layer_backward(layer, dy, NULL)) != MOE_OK ||
        (rc = moe_optim_step(opt, moe_layer_params(layer), moe_layer_grads(layer),
                             1e-2)) != MOE_OK ||
        (rc = moe_layer_bias_update(layer, 1e-3)) != MOE_OK)
      goto out;
    if (step == 0)
      first = loss;
  }
  printf("mse: step 0 %.6f, step %d %.6f\n", first, STEPS - 1, loss);

  const int *chosen = moe_layer_chosen(layer);  /* (T, K) of the last forward */
  const float *w = moe_layer_weights(layer);    /* (T, K) */
  const int *counts = moe_layer_expert_counts(layer); /* (E) */
  for (int t = 0; t < moe_layer_last_T(layer); t++) {
    printf("token %d:", t);
    for (int k = 0; k < K; k++)
      printf(" expert %d w %.4f", chosen[t * K + k], w[t * K + k]);
    printf("\n");
  }
  double share[E]; /* (E) */
  double jain;
  printf("load:");
  for (int e = 0; e < E; e++) {
    printf(" %d", counts[e]);
    share[e] = counts[e];
  }
  if ((rc = moe_metrics_jain(share, E, &jain)) != MOE_OK)
    goto out;
  printf("\nJain fairness %.4f\n", jain);

out:
  if (rc != MOE_OK)
    fprintf(stderr, "layer-demo: %s\n", moe_last_error());
  moe_optim_free(opt);
  gsl_rng_free(r);
  moe_layer_free(layer);
  return rc == MOE_OK ? 0 : 1;
}
