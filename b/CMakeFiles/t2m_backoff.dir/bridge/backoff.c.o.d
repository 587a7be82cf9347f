CMakeFiles/t2m_backoff.dir/bridge/backoff.c.o: \
 /work/main/bridge/backoff.c /usr/include/stdc-predef.h \
 /work/main/bridge/backoff.h
