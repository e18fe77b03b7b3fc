/*
 * link_cyc_a.c - with link_cyc_b.c, two modules importing each other
 * ("a".ping <-> "b".pong): a manifest linking them is refused with
 * "circular imports between modules: b -> a -> b".
 */
#include "guest.h"

__attribute__((import_module("b"), import_name("pong"))) int32_t b_pong(int32_t n);

EXPORT("ping") int32_t ping(int32_t n)
{
    return n <= 0 ? 0 : b_pong(n - 1) + 1;
}
