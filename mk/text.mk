## text area (see Makefile.am)
