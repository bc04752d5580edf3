## core area (see Makefile.am)
