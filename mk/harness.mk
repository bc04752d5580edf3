## harness area (see Makefile.am)
