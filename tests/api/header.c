/* The header test. meson.build compiles this once per public header
   (FUT_TEST_HEADER) as C99 and as C11, and header.cpp once as C++11, each
   with -Wall -Wextra -Wpedantic -Werror. The header comes first, twice: it
   must need nothing included before it and survive a second inclusion.
   Then the header's consumer program (FUT_TEST_PROGRAM, from
   tests/consumer) drives the library through it; as C++ it links only if
   the header declares its API extern "C". */
#include FUT_TEST_HEADER
#include FUT_TEST_HEADER

#ifndef FUT_TEST_PROGRAM
#  error "every public header needs its program, tests/consumer/<header>.c"
#endif
#include FUT_TEST_PROGRAM
