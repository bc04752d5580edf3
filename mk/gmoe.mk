## gmoe area (see Makefile.am)
lib_libmoe_la_SOURCES += lib/gmoe.c
moeinclude_HEADERS += lib/moe/gmoe.h
