/*
 * host.c - an Extism host program, written against Extism's own C API only:
 * it builds unchanged with libextism or with Kiln's libkiln.
 *
 *     make install PREFIX=$HOME/.local            (from the Kiln tree)
 *     cc host.c $(pkg-config --cflags --libs kiln) -o host
 *     LD_LIBRARY_PATH=$HOME/.local/lib ./host plugin.wasm "some input"
 *
 * The plugin (tests/guests_extism/hostfn.c) exports `shout`, which hands
 * its input to the host function hello_world (namespace extism:host/user)
 * and outputs the block that function returns. Here the host upper-cases
 * the text and counts its calls in user data.
 */
#include <extism.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stats {
    int calls;
} stats;

static void hello_world(ExtismCurrentPlugin *plugin, const ExtismVal *inputs, ExtismSize n_inputs,
                        ExtismVal *outputs, ExtismSize n_outputs, void *data)
{
    stats *s = data;
    s->calls++;
    (void)n_inputs, (void)n_outputs;
    ExtismMemoryHandle in = (ExtismMemoryHandle)inputs[0].v.i64;
    ExtismSize len = extism_current_plugin_memory_length(plugin, in);
    ExtismMemoryHandle out = extism_current_plugin_memory_alloc(plugin, len);
    /* Allocating may move plugin memory: take its base afterwards. */
    uint8_t *mem = extism_current_plugin_memory(plugin);
    for (ExtismSize i = 0; i < len; i++) {
        uint8_t c = mem[in + i];
        mem[out + i] = c >= 'a' && c <= 'z' ? (uint8_t)(c - 32) : c;
    }
    outputs[0].v.i64 = (int64_t)out;
}

static void free_stats(void *data)
{
    printf("host function freed after %d call(s)\n", ((stats *)data)->calls);
    free(data);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s plugin.wasm INPUT\n", argv[0]);
        return 2;
    }
    printf("extism %s\n", extism_version());
    size_t len;
    uint8_t *wasm = read_file(argv[1], &len);
    if (wasm == NULL) {
        perror(argv[1]);
        return 1;
    }
    stats *s = calloc(1, sizeof(*s));
    ExtismValType ptr = PTR;
    ExtismFunction *fn = extism_function_new("hello_world", &ptr, 1, &ptr, 1, hello_world, s,
                                             free_stats);
    const ExtismFunction *fns[] = {fn};
    char *err = NULL;
    ExtismPlugin *plugin = extism_plugin_new(wasm, len, fns, 1, true, &err);
    free(wasm);
    extism_function_free(fn);
    if (plugin == NULL) {
        fprintf(stderr, "cannot load the plugin: %s\n", err);
        extism_plugin_new_error_free(err);
        return 1;
    }
    int status = 0;
    for (int i = 0; i < 2; i++) {
        int32_t rc = extism_plugin_call(plugin, "shout", (const uint8_t *)argv[2], strlen(argv[2]));
        if (rc != EXTISM_SUCCESS) {
            fprintf(stderr, "call failed: %s\n", extism_plugin_error(plugin));
            status = 1;
            break;
        }
        printf("%.*s\n", (int)extism_plugin_output_length(plugin),
               (const char *)extism_plugin_output_data(plugin));
    }
    extism_plugin_free(plugin);
    return status;
}
