# SPDX-License-Identifier: GPL-3.0-or-later
## doc/ (see Makefile.am): the manuals, the design notes and the
## reproduced results (doc/results.md, written by `make bench`) with their
## figures.
dist_man_MANS += doc/moebench.1 doc/moebench-matrix.5 doc/moe-tokfile.5 doc/libmoe.3
EXTRA_DIST += doc/results.md doc/figures/fig6.svg doc/figures/perf-layer.svg \
	doc/thm4-limit.md doc/synthetic-findings.md doc/figures/gate-fn-err.svg doc/figures/gate-par-err.svg \
	doc/figures/fig6-quick.svg doc/figures/gate-compare-loss.svg doc/figures/gate-compare-eta.svg \
	doc/figures/lm_valid_ppl.svg doc/figures/lm_saturation.svg doc/figures/lm_change_rate.svg \
	doc/figures/lm_saturation_layer.svg doc/figures/lm_change_rate_layer.svg doc/figures/lm_jfi_layer.svg \
	doc/figures/lm_jfi_weight_layer.svg doc/figures/lm_jfi.svg \
	doc/HACKING.md doc/vision-design.md doc/lm-design.md doc/figures/d2.svg \
	doc/figures/vision_valid_acc.svg doc/figures/vision_class_acc.svg doc/figures/vision_saturation.svg \
	doc/figures/vision_change_rate.svg doc/figures/vision_change_rate_class.svg doc/figures/vision_jfi.svg \
	doc/figures/vision_jfi_class.svg
# the results archive's report (make archive-report, mk/bench-harness.mk):
# the .md only, not the .html (no source-is-missing: archive/ is not shipped)
EXTRA_DIST += doc/archive-results.md doc/lm-results.md doc/threads.md
