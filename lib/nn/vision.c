/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vision.c — the image classifier with an MoE connector (see
 * moe/vision.h). The numerical code is in vision_impl.h, compiled here for
 * float and for double; the optimizer step is float only. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"
#include "moe/rng.h"
#include "moe/vision.h"

moe_vision_config moe_vision_config_make(int Hi, int Wi, int P, int C, int D, int H, int L,
                                         int Lh, int F, const moe_layer_config *moe)
{
  moe_vision_config c;
  memset(&c, 0, sizeof c);
  c.Hi = Hi;
  c.Wi = Wi;
  c.P = P;
  c.C = C;
  c.D = D;
  c.H = H;
  c.L = L;
  c.Lh = Lh;
  c.F = F;
  if (moe)
    c.moe = *moe;
  c.moe.D = D;
  return c;
}

int moe_vision_check(const moe_vision_config *c)
{
  MOE_CHECK_ARG(c, "vision: NULL config");
  MOE_CHECK_ARG(c->Hi >= 1 && c->Wi >= 1 && c->Hi <= 4096 && c->Wi <= 4096,
                "vision: image %dx%d outside 1..4096", c->Hi, c->Wi);
  MOE_CHECK_ARG(c->P >= 1 && c->Hi % c->P == 0 && c->Wi % c->P == 0,
                "vision: patch side P=%d does not divide the %dx%d image", c->P, c->Hi, c->Wi);
  MOE_CHECK_ARG(c->C >= 2 && c->C <= 65536, "vision: C=%d classes outside 2..65536", c->C);
  MOE_CHECK_ARG(c->D >= 1 && c->D <= 65536, "vision: D=%d outside 1..65536", c->D);
  MOE_CHECK_ARG(c->H >= 1 && c->D % c->H == 0, "vision: H=%d heads must divide D=%d", c->H, c->D);
  MOE_CHECK_ARG(c->L >= 0 && c->L <= 1024, "vision: L=%d encoder blocks outside 0..1024", c->L);
  MOE_CHECK_ARG(c->Lh >= 0 && c->Lh <= 1024, "vision: Lh=%d head blocks outside 0..1024", c->Lh);
  MOE_CHECK_ARG(c->F >= 1, "vision: dense FFN width F=%d < 1", c->F);
  MOE_CHECK_ARG(c->moe.D == c->D, "vision: moe.D=%d differs from D=%d", c->moe.D, c->D);
  return moe_layer_check(&c->moe);
}

int moe_vision_num_patches(const moe_vision_config *c)
{
  return moe_vision_check(c) ? 0 : (c->Hi / c->P) * (c->Wi / c->P);
}

int moe_vision_patch_dim(const moe_vision_config *c)
{
  return moe_vision_check(c) ? 0 : c->P * c->P;
}

/* The dense FFN of encoder and head blocks: one GELU expert of width F. */
static moe_layer_config moei_vision_dense(const moe_vision_config *c)
{
  moe_layer_config d;
  memset(&d, 0, sizeof d);
  moe_layer_config_variant(&d, "dense", (moe_variant_sizes){.D = c->D, .F = c->F, .N = 1, .K = 1, .shared = 0});
  d.expert.act = MOE_ACT_GELU;
  return d;
}

static moe_block_config moei_vision_block(const moe_vision_config *c, int encoder)
{
  moe_block_config b;
  memset(&b, 0, sizeof b);
  b.D = c->D;
  b.H = c->H;
  b.causal = 0;
  b.ffn = encoder && c->moe_everywhere ? c->moe : moei_vision_dense(c);
  return b;
}

static size_t moei_vision_layer_count(const moe_layer_config *c)
{
  const size_t n_sigma = c->combine == MOE_COMBINE_PAPER ? (size_t)c->S : 0;
  return (size_t)c->E * c->D + n_sigma +
         (size_t)(c->S + c->E) * moe_expert_param_count(&c->expert, c->D);
}

static size_t moei_vision_param_count(const moe_vision_config *c)
{
  const moe_block_config be = moei_vision_block(c, 1), bh = moei_vision_block(c, 0);
  const size_t D = c->D, pd = (size_t)c->P * c->P, Np = (size_t)(c->Hi / c->P) * (c->Wi / c->P);
  return D * pd + D + Np * D + (size_t)c->L * moe_block_param_count(&be) + 2 * D +
         moei_vision_layer_count(&c->moe) + (size_t)c->Lh * moe_block_param_count(&bh) + 2 * D +
         (size_t)c->C * D + c->C;
}

/* One count, by component (moe/vision.h): per image, one forward. */
static double moei_vision_ffn_flops(const moe_layer_config *f, double D)
{
  const double expert = f->expert.kind == MOE_EXPERT_FFN ? 4 * D * f->expert.F : 2 * D * D;
  return 2 * D * f->E + (double)(f->K + f->S) * expert;
}

int moe_vision_flops_parts(const moe_vision_config *c, moe_vision_parts *out)
{
  MOE_CHECK_ARG(c && out, "vision flops: NULL argument");
  int rc = moe_vision_check(c);
  if (rc)
    return rc;
  const moe_block_config be = moei_vision_block(c, 1), bh = moei_vision_block(c, 0);
  const double D = c->D, Np = (double)(c->Hi / c->P) * (c->Wi / c->P), pd = (double)c->P * c->P;
  const double expert = c->moe.expert.kind == MOE_EXPERT_FFN ? 4 * D * c->moe.expert.F : 2 * D * D;
  memset(out, 0, sizeof *out);
  out->embed = 2 * Np * pd * D;
  out->attention = (double)(c->L + c->Lh) * Np * (8 * D * D + 4 * Np * D);
  out->ffn = Np * (c->L * moei_vision_ffn_flops(&be.ffn, D) + c->Lh * moei_vision_ffn_flops(&bh.ffn, D));
  out->router = Np * 2 * D * c->moe.E;
  out->experts = Np * (double)(c->moe.K + c->moe.S) * expert;
  out->classifier = 2 * D * c->C;
  out->norms = 0;
  out->total = out->embed + out->attention + out->ffn + out->router + out->experts + out->classifier;
  return MOE_OK;
}

int moe_vision_param_parts(const moe_vision_config *c, moe_vision_parts *out)
{
  MOE_CHECK_ARG(c && out, "vision params: NULL argument");
  int rc = moe_vision_check(c);
  if (rc)
    return rc;
  const moe_block_config be = moei_vision_block(c, 1), bh = moei_vision_block(c, 0);
  const double D = c->D, Np = (double)(c->Hi / c->P) * (c->Wi / c->P), pd = (double)c->P * c->P;
  memset(out, 0, sizeof *out);
  out->embed = D * pd + D + Np * D;
  out->attention = (double)(c->L + c->Lh) * 4 * D * D;
  out->norms = (double)(c->L + c->Lh) * 4 * D + 4 * D;
  out->ffn = c->L * (double)moei_vision_layer_count(&be.ffn) + c->Lh * (double)moei_vision_layer_count(&bh.ffn);
  out->router = (double)c->moe.E * D + (c->moe.combine == MOE_COMBINE_PAPER ? c->moe.S : 0);
  out->experts = (double)(c->moe.S + c->moe.E) * (double)moe_expert_param_count(&c->moe.expert, c->D);
  out->classifier = (double)c->C * D + c->C;
  out->total = out->embed + out->attention + out->norms + out->ffn + out->router + out->experts + out->classifier;
  return MOE_OK;
}

#define MOE_REAL_DOUBLE 0
#include "real.h"
#include "par_impl.h"
#include "vision_impl.h"
#undef MOE_REAL_DOUBLE
#define MOE_REAL_DOUBLE 1
#include "real.h"
#include "par_impl.h"
#include "vision_impl.h"

int moe_vision_step(moe_vision *m, moe_optim *o, const moe_lr_schedule *sched, double clip,
                    double *grad_norm)
{
  MOE_CHECK_ARG(m, "vision step: NULL argument");
  return moei_clip_step(m->params, m->grads, m->n_params, o, sched, clip, grad_norm, "vision");
}
