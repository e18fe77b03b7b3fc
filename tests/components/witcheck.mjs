// witcheck.mjs WITDIR WORLD OUT.wasm: parse the WIT package in WITDIR with
// wasm-tools (jco), make a component of WORLD around a dummy core module
// wasm-tools generates for it, write it to OUT.wasm and print its WIT as
// wasm-tools prints it. Fails (exit 1, the parser's message) when the WIT
// does not parse or resolve. Used to check `kiln wit --dir`'s output.
import { writeFile } from 'node:fs/promises';
import { componentEmbed, componentNew, componentWit } from './jco_tools.mjs';

const [witPath, world, out] = process.argv.slice(2);
try {
  const component = await componentNew(await componentEmbed({ dummy: true, witPath, world }));
  await writeFile(out, component);
  process.stdout.write(await componentWit(component));
} catch (e) {
  console.error(`witcheck: ${witPath} (world ${world}): ${e.message || e}`);
  process.exit(1);
}
