# SPDX-License-Identifier: GPL-3.0-or-later
## lib/ (see Makefile.am): libmoe itself, what all its modules share
## (errors, random streams, version and BLAS facts, SLEEF element-wise
## maths, SHA-256, statistics), its public headers lib/moe/ and its
## pkg-config module. The modules add their sources in mk/lib-*.mk.
##
## Every source is compiled once, into lib/libmoe_impl.la: a libtool
## convenience library (not installed) in which every symbol is visible.
## The installed lib/libmoe.la is that library with only the public names
## exported; the tests of internals (the double twins, the unchecked
## kernels, lib/vmath.c) link lib/libmoe_impl.la instead (MOE_IMPL_LIBS).
lib_LTLIBRARIES += lib/libmoe.la
noinst_LTLIBRARIES += lib/libmoe_impl.la
lib_libmoe_impl_la_SOURCES = lib/error.c lib/rng.c lib/version.c lib/internal.h \
	lib/vmath.c lib/vmath.h lib/stats.c
lib_libmoe_la_SOURCES =
# SHA-256 on its own, so that moebench's cell ids (mk/bench.mk) use the
# same object without a second compilation.
noinst_LTLIBRARIES += lib/libmoe_sha256.la
lib_libmoe_sha256_la_SOURCES = lib/sha256.c lib/sha256.h
lib_libmoe_impl_la_LIBADD = lib/libmoe_sha256.la
# BLAS before GSL: with --as-needed (Debian's default) the first CBLAS in
# libmoe's own dependency list wins, and GSL's pkg-config brings
# -lgslcblas, the slow reference CBLAS (t/pkg-install.sh checks the binding).
# No libyaml: only the harness (bench/harness/matrix.c) reads YAML, and a
# library that links what it does not call makes every user install it.
lib_libmoe_la_LIBADD = lib/libmoe_impl.la $(BLAS_LIBS) $(GSL_LIBS) $(ZLIB_LIBS) $(UTF8PROC_LIBS) $(SLEEF_LIBS) -lm
lib_libmoe_la_LDFLAGS = $(OPENMP_CFLAGS) -version-info $(MOE_LT_VERSION) -no-undefined \
	-export-symbols lib/libmoe.sym
# The ABI: libmoe.so exports every function an installed header declares
# and nothing else (not the double twins of lib/nn/private.h, not the moei_
# helpers). The list is made from the headers at build time, so a header
# cannot declare what the library hides; t/symbols.sh checks both ways and
# debian/libmoeN.symbols records it (make debian-symbols).
EXTRA_lib_libmoe_la_DEPENDENCIES = lib/libmoe.sym
lib/libmoe.sym: $(moeinclude_HEADERS)
	$(AM_V_GEN)$(MKDIR_P) lib; \
	for h in $(moeinclude_HEADERS); do cat "$(srcdir)/$$h" || exit 1; done | tr '\n' ' ' | \
	  sed -E 's:/\*([^*]|\*+[^*/])*\*+/: :g' | grep -oE 'moe_[A-Za-z0-9_]* *\(' | \
	  sed 's/ *($$//' | LC_ALL=C sort -u >$@-t && mv -f $@-t $@
CLEANFILES += lib/libmoe.sym
# What a program needs to link lib/libmoe_impl.la (libmoe.la's dependencies
# and the OpenMP runtime, which libmoe.la's LDFLAGS bring otherwise).
MOE_IMPL_LIBS = lib/libmoe_impl.la $(BLAS_LIBS) $(GSL_LIBS) $(ZLIB_LIBS) $(UTF8PROC_LIBS) $(SLEEF_LIBS) -lm
moeinclude_HEADERS += lib/moe/error.h lib/moe/rng.h lib/moe/version.h lib/moe/blas.h lib/moe/stats.h \
	lib/moe/token.h

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = lib/libmoe.pc
