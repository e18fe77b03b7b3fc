/*
 * utf16.c - kiln:strenc with the UTF-16 string encoding (strenc.h).
 * kiln-component: strenc strenc none utf16
 */
#include "strenc.h"
