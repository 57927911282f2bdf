#!/usr/bin/env node
// The operators' CLI (src/cli.ts), run through tsx from wherever it is installed.
import { tsImport } from 'tsx/esm/api';

const { main } = await tsImport('../src/cli.ts', import.meta.url);
process.exitCode = await main(process.argv);
