# SPDX-License-Identifier: GPL-3.0-or-later
## dist area (see Makefile.am): what a distribution needs beyond the
## build. The license; the Debian packaging (debian/, built from the
## release tarball by build-aux/deb-build.sh); reproducible release
## tarballs; the installed data of the moebench program; the tests of
## the Debian symbols file and of a real Slurm cluster (skipped where
## Slurm is not installed).
EXTRA_DIST += COPYING

# ---- installed data: /usr/share/moebench --------------------------------
# The matrices (every experiments/*.yaml in the source, and the cached
# limits they read), the script behind `make bench`, datasets/fetch.sh with
# its checksums, and a Makefile that gives an installed moebench the same
# bench / bench-quick / lm-data / image-data / fetch-data targets:
#   make -f $(pkgdatadir)/Makefile bench-quick
# A glob, not a list: a matrix added to EXTRA_DIST by any area installs.
EXTRA_DIST += bench/harness/share.mk
install-data-local: install-moebench-share
uninstall-local: uninstall-moebench-share
install-moebench-share:
	$(MKDIR_P) '$(DESTDIR)$(pkgdatadir)/experiments/limits'
	for f in $(srcdir)/experiments/*.yaml; do \
	  $(INSTALL_DATA) "$$f" '$(DESTDIR)$(pkgdatadir)/experiments/' || exit 1; done
	for f in $(srcdir)/experiments/limits/*; do \
	  $(INSTALL_DATA) "$$f" '$(DESTDIR)$(pkgdatadir)/experiments/limits/' || exit 1; done
	$(INSTALL_SCRIPT) $(srcdir)/bench/harness/mb-bench.sh '$(DESTDIR)$(pkgdatadir)/mb-bench.sh'
	$(INSTALL_DATA) $(srcdir)/bench/harness/share.mk '$(DESTDIR)$(pkgdatadir)/Makefile'
	$(MKDIR_P) '$(DESTDIR)$(pkgdatadir)/datasets'
	$(INSTALL_SCRIPT) $(srcdir)/datasets/fetch.sh '$(DESTDIR)$(pkgdatadir)/datasets/fetch.sh'
	$(INSTALL_DATA) $(srcdir)/datasets/SHA256SUMS '$(DESTDIR)$(pkgdatadir)/datasets/SHA256SUMS'
uninstall-moebench-share:
	rm -rf '$(DESTDIR)$(pkgdatadir)/experiments' '$(DESTDIR)$(pkgdatadir)/datasets'
	rm -f '$(DESTDIR)$(pkgdatadir)/mb-bench.sh' '$(DESTDIR)$(pkgdatadir)/Makefile'
	-rmdir '$(DESTDIR)$(pkgdatadir)'
.PHONY: install-moebench-share uninstall-moebench-share
# the installed Makefile's bench-quick without the data sets
TESTS += t/bench-share.sh
EXTRA_DIST += t/bench-share.sh

# ---- Debian packaging ------------------------------------------------------
debian_files = debian/changelog debian/control debian/copyright debian/rules \
	debian/source/format debian/libmoe0.install debian/libmoe0.symbols \
	debian/libmoe-dev.install debian/libmoe-dev.examples debian/moebench.install \
	debian/moebench.docs debian/not-installed debian/moebench.README.Debian \
	debian/source/lintian-overrides debian/moebench.lintian-overrides \
	debian/libmoe0.lintian-overrides debian/libmoe-dev.lintian-overrides \
	debian/tests/control debian/tests/layer-demo debian/tests/smoke \
	debian/tests/quick-start debian/upstream/metadata
EXTRA_DIST += $(debian_files) build-aux/gen-symbols.sh build-aux/deb-build.sh \
	build-aux/reproducible-check.sh build-aux/chroot-test.sh
# After adding or removing a public function: one command rewrites the
# symbols file from the built library (t/debian-symbols.sh checks it).
debian-symbols: lib/libmoe.la
	$(SHELL) $(srcdir)/build-aux/gen-symbols.sh $(top_builddir) $(srcdir)
.PHONY: debian-symbols
TESTS += t/debian-symbols.sh
EXTRA_DIST += t/debian-symbols.sh

# ---- reproducible release tarball ------------------------------------------
# Two `make dist` of the same commit give the same bytes: every file's
# mtime is set to SOURCE_DATE_EPOCH (else the commit date of a git
# checkout; else left as is), the modes lose group and other write bits
# (so the umask of the checkout does not matter), GNU tar sorts the names
# and records owner 0 (plain `tar chof` where GNU tar is missing), and gzip
# reads a pipe, so it records no name or time.
# build-aux/reproducible-check.sh checks it.
am__tar = { $${TAR-tar} --sort=name --owner=0 --group=0 --numeric-owner --format=ustar \
	-chf - "$$tardir" 2>/dev/null || $${TAR-tar} chof - "$$tardir"; }
dist-hook: dist-reproducible-mtime
dist-reproducible-mtime:
	@chmod -R u+w,go-w,a+rX $(distdir); \
	epoch=$${SOURCE_DATE_EPOCH:-}; \
	if test -z "$$epoch" && test -e $(top_srcdir)/.git; then \
	  epoch=`cd $(top_srcdir) && git log -1 --format=%ct 2>/dev/null` || epoch=; \
	fi; \
	if test -n "$$epoch"; then \
	  find $(distdir) -exec touch -h -d "@$$epoch" {} + || echo "dist: could not set file times" >&2; \
	  echo "dist: file times set to $$epoch"; \
	fi
.PHONY: dist-reproducible-mtime

# ---- a real Slurm cluster ----------------------------------------------------
TESTS += t/slurm.sh
EXTRA_DIST += t/slurm.sh
# It starts daemons as root, so `make check` skips it; this runs it (CI's
# slurm stage), printing its TAP lines.
check-slurm: bench/moebench
	@$(MKDIR_P) t/tmp
	MOE_SLURM_TEST=1 MOEBENCH='$(abs_top_builddir)/bench/moebench' srcdir='$(srcdir)' \
	  TMPDIR='$(abs_top_builddir)/t/tmp' OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
	  $(SHELL) $(srcdir)/t/slurm.sh
.PHONY: check-slurm
