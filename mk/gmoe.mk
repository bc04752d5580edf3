## gmoe area (see Makefile.am)
