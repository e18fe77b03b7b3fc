// kv_handler.js - the kiln:faas `handler-host` world in JavaScript
// (componentize-js): the bindings of wasi:keyvalue, wasi:config and
// wasi:logging are generated from Kiln's published WIT (wit/) by
// componentize-js, not written by hand. Each event: open "default",
// increment "js-counter", set and get "js-key", read config "greeting",
// log at info, open "secret" (not granted); the report is invalid(text).
import { open } from 'wasi:keyvalue/store@0.2.0-draft2';
import { increment } from 'wasi:keyvalue/atomics@0.2.0-draft2';
import { get as configGet } from 'wasi:config/store@0.2.0-draft';
import { log } from 'wasi:logging/logging@0.1.0-draft';

export function handle(event) {
  const b = open('default');
  const n = increment(b, 'js-counter', 1n);
  b.set('js-key', new TextEncoder().encode('from js'));
  const v = new TextDecoder().decode(b.get('js-key'));
  const keys = b.listKeys(undefined).keys.join(',');
  log('info', 'js', `counter is ${n}`);
  let secret = 'opened';
  try {
    open('secret');
  } catch (e) {
    secret = e.payload ? e.payload.tag : (e.tag || String(e));
  }
  throw { tag: 'invalid', val: `counter=${n} get=${v} keys=${keys} config=${configGet('greeting')} secret=${secret}` };
}
