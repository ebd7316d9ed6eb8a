'use strict';
// metaq/log4js: the log4js appender module (`type: 'metaq/log4js'`), CommonJS because log4js loads appenders with
// require(). metaq ships TypeScript without a build step, so the implementation is loaded through tsx's CommonJS API
// (a scoped loader: it does not change how the application's own files load). See README.md.
const { join } = require('node:path');
const impl = require('tsx/cjs/api').require('./log4js-appender.ts', __filename);

const workerFile = join(__dirname, 'worker-entry.cjs');

/** log4js's appender module contract: `configure(config, layouts)` returns the appender function. */
exports.configure = (config, layouts) => impl.createAppender(config, layouts, workerFile);

/** The stats of every live metaq appender of this process: sent, dropped, failed, buffered, ... */
exports.stats = () => impl.appenderStats();
