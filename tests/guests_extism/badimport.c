/* badimport.c - imports functions no host provides: loading must fail and
 * name them all. */
#include "guest.h"

XIMPORT("no_such_function") uint64_t no_such_function(uint64_t);
__attribute__((import_module("extism:host/user"), import_name("my_host_fn"))) uint64_t
my_host_fn(uint64_t);

EXPORT("run") int32_t run(void)
{
    return (int32_t)(no_such_function(1) + my_host_fn(2));
}
