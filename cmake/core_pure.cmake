# core_pure.cmake - fails the build when a core/ library imports a symbol that does I/O: a file,
# the clock, the environment, stderr or stdout (DESIGN.md: core/ decides, io/ moves bytes).
# Run as: cmake -DNM=<nm> -DLIB=<libt2m_x.a> -P core_pure.cmake
cmake_policy(SET CMP0057 NEW) # IN_LIST
set(FORBIDDEN
  open open64 openat openat64 creat read pread pread64 write pwrite pwrite64 close
  fopen fopen64 fdopen freopen fclose fread fwrite fputs fputc putc puts putchar printf fprintf
  vprintf vfprintf dprintf vdprintf fflush fgets getline perror
  __printf_chk __fprintf_chk __vfprintf_chk __vprintf_chk __dprintf_chk __read_chk __fgets_chk
  stdin stdout stderr
  getenv secure_getenv setenv putenv unsetenv
  clock_gettime time gettimeofday localtime localtime_r mktime tzset
  stat stat64 fstat fstat64 lstat lstat64 __xstat __xstat64 __fxstat __fxstat64 __lxstat
  access faccessat opendir readdir mkdir unlink rename
  socket connect send recv sendto recvfrom getrandom rand srand random srandom syslog)
execute_process(COMMAND ${NM} -u ${LIB} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm -u ${LIB} failed")
endif()
string(REGEX REPLACE "[ \t]*U[ \t]+" "" out "${out}")
string(REPLACE "\n" ";" syms "${out}")
set(bad)
foreach(s ${syms})
  string(REGEX REPLACE "@.*" "" s "${s}")
  if(s IN_LIST FORBIDDEN)
    list(APPEND bad ${s})
  endif()
endforeach()
if(bad)
  list(REMOVE_DUPLICATES bad)
  get_filename_component(name ${LIB} NAME)
  message(FATAL_ERROR "${name} is a core/ module but imports ${bad}: core/ does no I/O "
                      "(read files, the clock and the environment in bridge/io/, log through log.h)")
endif()
