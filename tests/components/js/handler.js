// handler.js - the kiln:faas `handler` world in JavaScript, built into a
// component by componentize.mjs (componentize-js: StarlingMonkey, a
// SpiderMonkey build for WASI 0.2). The same logic as guests/faas.c: a
// `scheduled` event is unsupported(event-type); an empty key is
// invalid("empty key"); a payload starting with '!' is failed(<the rest>).
// jco's convention for result<_, E>: return for ok, throw the error value.
export function handle(event) {
  if (event.eventType === 'scheduled') throw { tag: 'unsupported', val: event.eventType };
  if (event.key.length === 0) throw { tag: 'invalid', val: 'empty key' };
  if (event.payload.length > 0 && event.payload[0] === 33)
    throw { tag: 'failed', val: new TextDecoder().decode(event.payload.subarray(1)) };
}
