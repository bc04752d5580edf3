# SPDX-License-Identifier: GPL-3.0-or-later
## pkg area (see Makefile.am): what a distribution packager and a C
## programmer linking libmoe need. The libmoe(3) manual, whose EXAMPLE is
## examples/layer-demo.c; tests of the installed tree (headers, soname,
## pkg-config module, manuals, the example built against them), of the
## exported symbols, of the version written in each place, and of the
## reproducibility rules (no build dates, no machine-specific flags).
dist_man_MANS += doc/libmoe.3
EXTRA_DIST += examples/layer-demo.c

# The example, built in the tree as well: t/pkg-install.sh compares its
# output with the copy built against the installed library, and t/man.sh
# with the output the manual quotes. It links the BLAS before GSL as
# `pkg-config --libs libmoe` does, so that without --as-needed both copies
# load the same CBLAS first (GSL brings its reference CBLAS).
check_PROGRAMS += examples/layer-demo
examples_layer_demo_SOURCES = examples/layer-demo.c
examples_layer_demo_LDADD = lib/libmoe.la $(BLAS_LIBS) $(GSL_LIBS) -lm

pkg_tests = t/pkg-install.sh t/symbols.sh t/version.sh t/reproducible.sh t/man.sh
TESTS += $(pkg_tests)
EXTRA_DIST += $(pkg_tests)

# What those tests need from the build. AM_TESTS_ENVIRONMENT ends with an
# export, so these assignments follow it as further shell commands.
# MOE_MAKE runs `make install DESTDIR=...` from inside `make check`.
AM_TESTS_ENVIRONMENT += MOE_MAKE='$(MAKE)' MOE_CC='$(CC)' \
	MOE_PKG_CONFIG='$(PKG_CONFIG)' MOE_LT_VERSION='$(MOE_LT_VERSION)' \
	MOE_BINDIR='$(bindir)' MOE_LIBDIR='$(libdir)' \
	MOE_INCLUDEDIR='$(moeincludedir)' MOE_PKGCONFIGDIR='$(pkgconfigdir)' \
	MOE_MANDIR='$(mandir)' MOE_HEADERS='$(moeinclude_HEADERS)' \
	MOE_MANS='$(dist_man_MANS) $(man_MANS)' MOE_CFLAGS='$(MOE_CFLAGS)' \
	MOE_BUILD_CFLAGS='$(CFLAGS)'; \
	export MOE_MAKE MOE_CC MOE_PKG_CONFIG MOE_LT_VERSION MOE_BINDIR \
	MOE_LIBDIR MOE_INCLUDEDIR MOE_PKGCONFIGDIR MOE_MANDIR MOE_HEADERS \
	MOE_MANS MOE_CFLAGS MOE_BUILD_CFLAGS;
