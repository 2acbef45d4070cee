#!/usr/bin/env node
// The `tessera` command: a thin launcher for the compiled CLI in dist/.
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('tessera: the build is missing (dist/); run `npm install` or `npm run build` first');
    process.exit(1);
  }
  throw err;
});
