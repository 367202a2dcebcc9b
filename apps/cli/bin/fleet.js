#!/usr/bin/env node
// The `fleet` command. The TypeScript is compiled by `npm ci` (the root `prepare` script);
// if dist is missing, say how to build it rather than failing with a module error.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const main = join(__dirname, '..', 'dist', 'main.js');
if (!existsSync(main)) {
  console.error('fleet: the workspace is not built yet. Run `npm ci` (or `npm run build`) at the repository root.');
  process.exit(1);
}
require(main);
