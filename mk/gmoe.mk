## gmoe area (see Makefile.am)
lib_libmoe_la_SOURCES += lib/gmoe.c
moeinclude_HEADERS += lib/moe/gmoe.h
lib_libmoe_la_SOURCES += lib/voronoi.c
moeinclude_HEADERS += lib/moe/voronoi.h
