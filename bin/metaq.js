#!/usr/bin/env node
// The `metaq` executable: a shim that loads the TypeScript CLI through tsx (there is no build step).
// The store's fsyncs run on libuv's thread pool, whose size is fixed by the first async fs call: set it first.
process.env.UV_THREADPOOL_SIZE ??= '16';

const { register } = await import('tsx/esm/api');
register();
// `metaq binlog ...` lives in connectors/ and `metaq spout ...` in spout/ (broker/cli may not import either).
const { runCli } = process.argv[2] === 'binlog'
  ? { runCli: (await import('../connectors/binlog/cli.ts')).runBinlogCli }
  : process.argv[2] === 'spout'
    ? { runCli: (await import('../spout/cli.ts')).runSpoutCli }
    : await import('../broker/cli/main.ts');
// Exit explicitly: a stray handle must not keep a stopped server alive (stdout on Linux is synchronous).
process.exit(await runCli(process.argv));
