/* reactor.c - a WASI reactor (no main, exports _initialize and `add`), which
 * `kiln run` must refuse to run as a command.
 * kiln-guest-flags: -mexec-model=reactor
 */
__attribute__((export_name("add"))) int add(int a, int b)
{
    return a + b;
}
