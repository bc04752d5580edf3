# SPDX-License-Identifier: GPL-3.0-or-later
## lm area (see Makefile.am): transformer components (embedding, LayerNorm,
## attention, the pre-LN block around a moe_layer) and the MoE language
## model. Numerical code in <module>_impl.h, compiled for float and double.
moeinclude_HEADERS += lib/moe/nn.h lib/moe/lm.h
