#!/usr/bin/env node
// The `sandpool` command. A committed shim, so `npm ci` can link it before the first build;
// it loads the compiled CLI (`npm run build` makes dist/).
import '../dist/cli/main.js';
