/*
 * config_log.c - the C SDK's configuration and logging: a greeting from the
 * function's `config` block, and one log line per request in the server log
 * ("[info] <function>: ...").
 *
 *   functions:
 *     greet: {module: config_log.wasm, config: {greeting: Bonjour}}
 */
#include "kiln.h"

int main(void)
{
    char *greeting = kiln_config("greeting");
    char *name = kiln_query_param("name");
    const char *who = name ? name : "world";
    kiln_log(KILN_LOG_INFO, "greeting %s", who);
    if (greeting == NULL)
        kiln_log(KILN_LOG_WARN, "no 'greeting' in the configuration; using Hello");
    kiln_printf("%s, %s!\n", greeting ? greeting : "Hello", who);
    free(greeting);
    free(name);
    return 0;
}
