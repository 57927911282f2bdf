#!/usr/bin/env node
// The operators' CLI (src/cli.ts): in a clone, the source through tsx; where only the compiled package is (the
// Docker image, an installed package), dist/src/cli.js.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
const { main } = existsSync(source)
  ? await (await import('tsx/esm/api')).tsImport(source.href, import.meta.url)
  : await import(new URL('../dist/src/cli.js', import.meta.url).href);
process.exitCode = await main(process.argv);
