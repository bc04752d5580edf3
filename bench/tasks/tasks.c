/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tasks.c — the registry of tasks a matrix can name with `task:`. */
#include <string.h>
#include "task.h"

/* The names of the routing variants (moe_variant) as the tasks' `variant`
 * parameter accepts them: the choices of a declaration must be a static
 * table; t/test_matrix checks this one against moe_variant_name(), which
 * stays the one definition (tasks parse with moe_variant_parse). */
const char *const mb_variant_names[] = {"smoe",       "smoe_sg", "ds_v2", "ds_v3",
                                        "ds_v3_bias", "dense",   NULL};

extern const mb_task mb_task_selftest;
extern const mb_task mb_task_toy;
extern const mb_task mb_task_synthetic;
extern const mb_task mb_task_lm;
extern const mb_task mb_task_vision;

const mb_task *const mb_tasks[] = {
    &mb_task_selftest, &mb_task_toy, &mb_task_synthetic, &mb_task_lm, &mb_task_vision, NULL,
};

/* Tasks that test the harness itself: usable in a matrix, listed by
 * `moebench tasks` only with --all (or when named). */
static const mb_task *const internal[] = {&mb_task_selftest, NULL};

int mb_task_internal(const mb_task *t)
{
  for (const mb_task *const *i = internal; *i; i++)
    if (*i == t)
      return 1;
  return 0;
}

const mb_task *mb_task_find(const char *name)
{
  for (const mb_task *const *t = mb_tasks; *t; t++)
    if (!strcmp((*t)->name, name))
      return *t;
  return NULL;
}
