/* reactor_only.c - a WASI reactor (exports _initialize and a function, no
 * _start) that no handler ABI serves: its routes must answer 503.
 * kiln-guest-flags: -mexec-model=reactor
 */
__attribute__((export_name("add"))) int add(int a, int b)
{
    return a + b;
}
