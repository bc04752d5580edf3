# SPDX-License-Identifier: GPL-3.0-or-later
## experiments/ (see Makefile.am): the YAML matrices (paper-*: the full
## reproductions, quick-*: minutes, smoke-*: seconds, for the tests) and
## the cached limits they read (limits/), and what `make install` puts
## with them under $(pkgdatadir).
EXTRA_DIST += experiments/limits/thm4.txt experiments/limits/gatecmp-nsigmoid.txt \
	experiments/smoke-selftest.yaml experiments/toy-sequential.yaml \
	experiments/quick-toy.yaml experiments/paper-toy.yaml \
	experiments/paper-synthetic.yaml experiments/quick-synthetic.yaml experiments/smoke-synthetic.yaml \
	experiments/paper-gate-compare.yaml experiments/paper-d2.yaml experiments/paper-stopping.yaml \
	experiments/smoke-lm.yaml experiments/quick-lm.yaml experiments/paper-lm.yaml experiments/paper-lm-lr.yaml \
	experiments/paper-lm-4x.yaml experiments/paper-lm-4x-lr.yaml \
	experiments/smoke-vision.yaml experiments/quick-vision.yaml experiments/paper-vision.yaml \
	experiments/paper-vision-pilot.yaml experiments/paper-vision-epochs.yaml \
	experiments/paper-vision-upcycle.yaml
# the recorded cells of the long matrices (archive/README.md says which)
EXTRA_DIST += archive/README.md

# ---- installed data: /usr/share/moebench --------------------------------
# The matrices (every experiments/*.yaml in the source, and the cached
# limits they read), the script behind `make bench`, datasets/fetch.sh with
# its checksums, and a Makefile that gives an installed moebench the same
# bench / bench-quick / lm-data / image-data / fetch-data targets:
#   make -f $(pkgdatadir)/Makefile bench-quick
# A glob, not a list: a matrix added to EXTRA_DIST installs.
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
