# SPDX-License-Identifier: GPL-3.0-or-later
## debian/ (see Makefile.am): the Debian packaging, built from the release
## tarball by build-aux/deb-build.sh, and its symbols file.
debian_files = debian/changelog debian/control debian/copyright debian/rules \
	debian/source/format debian/libmoe1.install debian/libmoe1.symbols \
	debian/libmoe-dev.install debian/libmoe-dev.examples debian/moebench.install \
	debian/moebench.docs debian/not-installed debian/moebench.README.Debian \
	debian/source/lintian-overrides debian/moebench.lintian-overrides \
	debian/libmoe1.lintian-overrides debian/libmoe-dev.lintian-overrides \
	debian/tests/control debian/tests/layer-demo debian/tests/smoke \
	debian/tests/quick-start debian/upstream/metadata
EXTRA_DIST += $(debian_files) build-aux/gen-symbols.sh build-aux/deb-build.sh \
	build-aux/reproducible-check.sh build-aux/chroot-test.sh
# After adding or removing a public function: one command rewrites the
# symbols file from the built library (t/debian-symbols.sh checks it).
debian-symbols: lib/libmoe.la
	$(SHELL) $(srcdir)/build-aux/gen-symbols.sh $(top_builddir) $(srcdir)
.PHONY: debian-symbols
