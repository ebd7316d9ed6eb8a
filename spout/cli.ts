/**
 * `metaq spout --topic <t> --group <g> (--server meta://h:p | --zk <connect>) [...]`: a {@link MetaqSpout} speaking
 * Storm's multilang protocol on stdin/stdout, for a topology's ShellSpout. Logs go to stderr (Storm copies them to
 * the worker log); warnings and errors also go to Storm as `log` frames.
 *
 * Exit status: 0 after stdin ended, SIGTERM or SIGINT (acked tuples committed); 1 when the spout failed (after an
 * `error` frame: the worker restarts and resumes from the committed offsets); 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { ClientOptions, ConsumerOptions } from '../sdk/index.js';
import { MetaqSpout } from './metaq-spout.js';
import { MultilangSpout, Schemes, StormLog, type SchemeName, type StormConf } from './multilang.js';

const USAGE = `usage: metaq spout --topic <t> --group <g> (--server meta://host:port | --zk <connect> [--zk-root /meta])
  [--max-pending N]      tuples pending and emitted beyond the committed offsets, at most
                         (default: topology.max.spout.pending of the topology, else 1000)
  [--max-replays N]      times a failed tuple is emitted again before the recover store (default 5)
  [--scheme s]           tuple values: string (default) [utf8] | json [parsed; an array is the values]
                         | base64 [base64] | message [value, topic, partition, offset, attribute]
  [--batch N]            tuples emitted per next at most (default 1)
  [--offsets-file f]     the local offset store (with --server; default ~/.metaq/offsets.json)
  [--recover-dir d]      the recover store of failed tuples (default ~/.metaq/recover)
  [--commit-interval ms] [--retry-delay ms] [--recover-interval ms]
  [--log-level l]        stderr log level: trace|debug|info|warn|error|fatal|silent (default warn)`;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** Deadline of the clean close after a signal; Storm's supervisor kills the process soon after anyway. */
const CLOSE_DEADLINE_MS = 15_000;

/** What the command line asks for. */
export interface SpoutCliArgs {
  readonly topic: string;
  readonly group: string;
  readonly client: ClientOptions;
  readonly maxPending: number | undefined;
  readonly maxReplays: number | undefined;
  readonly scheme: SchemeName;
  readonly batch: number;
  readonly consumer: Pick<ConsumerOptions, 'commitIntervalMs' | 'maxFetchDelayMs' | 'recoverIntervalMs'>;
  readonly logLevel: string;
}

/** Parses `metaq spout` arguments (after the word `spout`); a string is the usage error to print. */
export function parseSpoutArgs(args: readonly string[]): SpoutCliArgs | string {
  let v;
  try {
    v = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        topic: { type: 'string' }, group: { type: 'string' }, server: { type: 'string' }, zk: { type: 'string' },
        'zk-root': { type: 'string' }, 'max-pending': { type: 'string' }, 'max-replays': { type: 'string' },
        scheme: { type: 'string' }, batch: { type: 'string' }, 'offsets-file': { type: 'string' },
        'recover-dir': { type: 'string' }, 'commit-interval': { type: 'string' }, 'retry-delay': { type: 'string' },
        'recover-interval': { type: 'string' }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return (err as Error).message;
  }
  if (v.help === true) return '';
  if (v.topic === undefined || v.topic === '') return 'missing --topic <topic>';
  if (v.group === undefined || v.group === '') return 'missing --group <group>';
  if ((v.server === undefined) === (v.zk === undefined)) return 'give one of --server meta://host:port or --zk <connect>';
  if (v.server !== undefined && !/^meta:\/\/[^:/]+:\d+\/?$/.test(v.server)) {
    return `--server must be meta://host:port, got ${v.server}`;
  }
  const scheme = v.scheme ?? 'string';
  if (!Object.hasOwn(Schemes, scheme)) return `--scheme must be one of ${Object.keys(Schemes).join(', ')}, got ${scheme}`;
  const logLevel = v['log-level'] ?? process.env.METAQ_LOG_LEVEL ?? 'warn';
  if (!LOG_LEVELS.includes(logLevel)) return `--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`;
  const ints: Record<string, number | undefined> = {};
  const limits = { 'max-pending': 1, 'max-replays': 0, batch: 1, 'commit-interval': 1, 'retry-delay': 0, 'recover-interval': 1 };
  for (const [name, min] of Object.entries(limits)) {
    const text = v[name as keyof typeof limits];
    if (text === undefined) continue;
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) return `--${name} must be an integer >= ${min}, got ${text}`;
    ints[name] = n;
  }
  const client: ClientOptions = {
    ...(v.server === undefined ? {} : { serverUrl: v.server }),
    ...(v.zk === undefined ? {} : { zkConnect: v.zk }),
    ...(v['zk-root'] === undefined ? {} : { zkRoot: v['zk-root'] }),
    ...(v['offsets-file'] === undefined ? {} : { offsetsFile: v['offsets-file'] }),
    ...(v['recover-dir'] === undefined ? {} : { recoverDir: v['recover-dir'] }),
  };
  const consumer = {
    ...(ints['commit-interval'] === undefined ? {} : { commitIntervalMs: ints['commit-interval'] }),
    ...(ints['retry-delay'] === undefined ? {} : { maxFetchDelayMs: ints['retry-delay'] }),
    ...(ints['recover-interval'] === undefined ? {} : { recoverIntervalMs: ints['recover-interval'] }),
  };
  return {
    topic: v.topic, group: v.group, client, maxPending: ints['max-pending'], maxReplays: ints['max-replays'],
    scheme: scheme as SchemeName, batch: ints.batch ?? 1, consumer, logLevel,
  };
}

/** The maxPending to use: the flag, else Storm's topology.max.spout.pending, else the spout's default. */
function maxPendingOf(args: SpoutCliArgs, conf: StormConf): number | undefined {
  if (args.maxPending !== undefined) return args.maxPending;
  const storm = conf['topology.max.spout.pending'];
  return typeof storm === 'number' && Number.isSafeInteger(storm) && storm > 0 ? storm : undefined;
}

/** Runs `metaq spout` of `argv` (`node metaq.js spout ...`); resolves with the exit status. */
export async function runSpoutCli(argv: readonly string[]): Promise<number> {
  const parsed = parseSpoutArgs(argv.slice(3));
  if (parsed === '') {
    process.stderr.write(`${USAGE}\n`);
    return 0;
  }
  if (typeof parsed === 'string') {
    process.stderr.write(`metaq spout: ${parsed}\n${USAGE}\n`);
    return 2;
  }
  const stormLog = new StormLog();
  // stdout is the protocol's: every log line goes to stderr, and warnings also to Storm's log.
  const stderrLevel = parsed.logLevel;
  const streams: pino.StreamEntry[] = [{ level: 'warn', stream: stormLog }];
  if (stderrLevel !== 'silent') streams.push({ level: stderrLevel as pino.Level, stream: pino.destination(2) });
  const level = ['trace', 'debug', 'info'].includes(stderrLevel) ? stderrLevel : 'warn';
  const logger = pino({ level }, pino.multistream(streams));
  const multilang = new MultilangSpout({
    input: process.stdin, output: process.stdout, batch: parsed.batch, stormLog, logger,
    makeSpout: (conf) => new MetaqSpout({
      client: parsed.client, topic: parsed.topic, group: parsed.group, logger, consumer: parsed.consumer,
      toValues: Schemes[parsed.scheme], maxReplays: parsed.maxReplays, maxPending: maxPendingOf(parsed, conf),
    }),
  });
  // The close after a signal has a deadline; a running spout has none.
  const deadline = new Promise<number>((resolve) => {
    const onSignal = (): void => {
      multilang.stop();
      setTimeout(() => resolve(1), CLOSE_DEADLINE_MS).unref();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  const code = await Promise.race([multilang.run(), deadline]);
  if (code !== 0) logger.flush();
  return code;
}
