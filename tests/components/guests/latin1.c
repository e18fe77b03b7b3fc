/*
 * latin1.c - kiln:strenc with the Latin-1+UTF-16 string encoding
 * (compact-utf16; strenc.h).
 * kiln-component: strenc strenc none compact-utf16
 */
#include "strenc.h"
