/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tasks.c — the registry of tasks a matrix can name with `task:`. */
#include <string.h>
#include "task.h"

extern const mb_task mb_task_selftest;
extern const mb_task mb_task_toy;
extern const mb_task mb_task_synthetic;
extern const mb_task mb_task_lm;
extern const mb_task mb_task_vision;

const mb_task *const mb_tasks[] = {
  &mb_task_selftest,
  &mb_task_toy,
  &mb_task_synthetic,
  &mb_task_lm,
  &mb_task_vision,
  NULL,
};

const mb_task *mb_task_find(const char *name)
{
  for (const mb_task *const *t = mb_tasks; *t; t++)
    if (!strcmp((*t)->name, name)) return *t;
  return NULL;
}
