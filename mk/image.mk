## image area (see Makefile.am)
