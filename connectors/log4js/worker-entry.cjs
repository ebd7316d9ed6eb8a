'use strict';
// The sender worker's entry: loads the TypeScript sender the same way index.cjs loads the appender.
require('tsx/cjs/api').require('./sender-worker.ts', __filename);
