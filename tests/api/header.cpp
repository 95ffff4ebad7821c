// header.c, compiled as C++ (meson picks the language by the extension).
#include "header.c"
