/* badimport.c - imports functions no Kiln ABI provides, to test that
 * `kiln run` rejects the module before compiling and names every import. */
#include <stdio.h>

__attribute__((import_module("env"), import_name("kiln_no_such_fn")))
int kiln_no_such_fn(int);
__attribute__((import_module("nonexistent_module"), import_name("frobnicate")))
void frobnicate(void);

int main(void)
{
    frobnicate();
    printf("%d\n", kiln_no_such_fn(1));
    return 0;
}
