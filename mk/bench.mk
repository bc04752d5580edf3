## bench area (see Makefile.am)
