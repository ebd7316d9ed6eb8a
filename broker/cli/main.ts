/**
 * The `metaq` command line (bin/metaq.js loads this through tsx).
 *
 * Exit codes: 0 success; 1 failure (broker or ZooKeeper unreachable, store problems found, start failed, unknown
 * group or topic, offset reset refused); 2 usage or configuration error (bad partition or offset given); `server status` uses the LSB codes 0/1/3/4 (see server-control.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { MetaqError } from '../../sdk/errors.js';
import { serverPromote, serverStatus, serverStop } from './server-control.js';
import type { ClusterFlags } from './cluster/cluster-context.js';
import type { OffsetsFlags } from './cluster/offsets-command.js';
import { statsCommand } from './stats-command.js';
import { verifyCommand } from './verify-command.js';

const EXIT_USAGE = 2;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Options shared by the commands that act on a broker's configuration. */
function configOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'server.ini to use (default: the embedded standalone configuration)')
    .option('--port <n>', 'override [system] serverPort')
    .option('--data-path <dir>', 'override [system] dataPath')
    .option('--broker-id <n>', 'override [system] brokerId')
    .option('--set <section.key=value>', 'override any key, e.g. --set topic=orders.numPartitions=8 (repeatable)', collect, []);
}

/** Where the cluster commands find ZooKeeper. */
function zkOptions(cmd: Command): Command {
  return cmd
    .option('--zk <connect>', 'ZooKeeper host:port[,host:port...][/chroot] (default: zk.zkConnect of -c server.ini)')
    .option('--zk-root <root>', 'the cluster\'s root znode (default: zk.zkRoot of -c, else /meta)')
    .option('--zk-timeout <ms>', 'how long to wait for ZooKeeper (default 10000)')
    .option('--json', 'print JSON instead of a table');
}

/** A cluster command: ZooKeeper options, -c for the [zookeeper] section, a short broker timeout. */
function clusterCommand(cmd: Command): Command {
  return zkOptions(cmd)
    .option('-c, --config <file>', 'server.ini whose [zookeeper] section names the cluster')
    .option('--timeout <ms>', "how long to wait for a broker's answer (default 3000)");
}

function offsetOptions(cmd: Command): Command {
  return clusterCommand(cmd)
    .requiredOption('--group <group>', 'the consumer group')
    .requiredOption('--topic <topic>', 'the topic')
    .option('--partition <brokerId-n>', 'one partition, e.g. 0-3 (repeatable; default: every partition)', collect, []);
}

function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('metaq')
    .description('metaq: a MetaQ 1.4 compatible message broker')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const server = program.command('server').description('run and control a broker (like MetaQ\'s metaServer.sh)');
  configOptions(server.command('start').description('start a broker; runs in the foreground unless --daemon'))
    .option('--zk <connect>', 'cluster mode: register in this ZooKeeper (sets zk.zkEnable=true and zk.zkConnect)')
    .option('-d, --daemon', 'run in the background; return once it accepts connections')
    .option('--pid-file <file>', 'pid file (default <dataPath>/metaq.pid)')
    .option('--log-file <file>', 'write logs here (default: stdout; with --daemon <dataPath>/metaq.log)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option('--start-timeout <ms>', 'with --daemon: how long to wait for the broker to accept connections', '120000')
    .action(async (flags) => {
      // Loaded lazily: stop/status/stats/verify need none of the broker's modules.
      const { serverStart } = await import('./server-start.js');
      setCode(await serverStart(flags));
    });
  configOptions(server.command('stop').description('stop the broker named by the pid file (SIGTERM, then wait)'))
    .option('--pid-file <file>', 'pid file (default <dataPath>/metaq.pid)')
    .option('--timeout <ms>', 'how long to wait for it to exit (default shutdownTimeoutMs + 20 s)')
    .option('--force', 'SIGKILL it if it has not exited by then')
    .action(async (flags) => setCode(await serverStop(flags)));
  configOptions(server.command('status').description('is the broker running? exit 0 running, 1 dead with pid file, 3 stopped, 4 not answering'))
    .option('--pid-file <file>', 'pid file (default <dataPath>/metaq.pid)')
    .option('--host <host>', 'address to ask (default: the bind address, or 127.0.0.1)')
    .action(async (flags) => setCode(await serverStatus(flags)));
  configOptions(server.command('promote').description('failover: make the slave named by -c the master (exit 0 promoted, 1 refused, 4 not answering)'))
    .option('--host <host>', 'address to ask (default: the bind address, or 127.0.0.1)')
    .option('--http-port <n>', 'its HTTP port (default: dashboardHttpPort of the configuration)')
    .action(async (flags) => setCode(await serverPromote(flags)));

  configOptions(program.command('stats').argument('[item]', "statistics item: '' (summary), topics, offsets, realtime, config, help, <topic>", '')
    .description('print a broker\'s statistics (the stats command of the protocol)'))
    .option('--host <host>', 'broker address (default 127.0.0.1)')
    .option('--timeout <ms>', 'how long to wait for the answer', '10000')
    .action(async (item: string, flags) => setCode(await statsCommand(item, flags)));
  zkOptions(configOptions(program.command('topics')
    .description('print the topics of a broker (stats topics); with --zk (or --cluster) every topic of a cluster')))
    .option('--host <host>', 'broker address (default 127.0.0.1)')
    .option('--timeout <ms>', "how long to wait for a broker's answer (default 10000; 3000 in cluster mode)")
    .option('--cluster', "read the cluster from -c server.ini's [zookeeper] section")
    .action(async (flags: ClusterFlags & { cluster?: boolean }) => {
      if (flags.zk === undefined && flags.cluster !== true) {
        setCode(await statsCommand('topics', flags));
        return;
      }
      const { clusterTopicsCommand } = await import('./cluster/topics-command.js');
      setCode(await clusterTopicsCommand(flags));
    });

  clusterCommand(program.command('brokers')
    .description('list the brokers registered in ZooKeeper (master, slaves, config checksum) and whether they answer'))
    .action(async (flags: ClusterFlags) => {
      const { brokersCommand } = await import('./cluster/brokers-command.js');
      setCode(await brokersCommand(flags));
    });
  clusterCommand(program.command('groups').argument('[group]', 'one group: its members, owners, offsets and lag')
    .description('list the consumer groups in ZooKeeper, or show one group'))
    .action(async (group: string | undefined, flags: ClusterFlags) => {
      const { groupsCommand } = await import('./cluster/groups-command.js');
      setCode(await groupsCommand(group, flags));
    });
  const offsets = program.command('offsets').description("show or change a consumer group's committed offsets in ZooKeeper");
  const offsetsAction = (action: 'show' | 'reset' | 'skip') => async (flags: OffsetsFlags): Promise<void> => {
    const { offsetsCommand } = await import('./cluster/offsets-command.js');
    setCode(await offsetsCommand(action, flags));
  };
  offsetOptions(offsets.command('show').description('the owner, committed offset, end offset and lag of each partition'))
    .action(offsetsAction('show'));
  offsetOptions(offsets.command('reset').description('set the committed offsets; refused while a partition has a live owner unless --force'))
    .requiredOption('--to <where>', 'earliest, latest or a byte offset (checked against the partition)')
    .option('--force', "reset even partitions a live consumer owns (its next commit is refused; it restarts from here)")
    .action(offsetsAction('reset'));
  offsetOptions(offsets.command('skip').description('set the committed offsets to the end of each partition (reset --to latest)'))
    .option('--force', "skip even partitions a live consumer owns (its next commit is refused; it restarts from here)")
    .action(offsetsAction('skip'));

  program.command('verify').argument('<dataDir>', 'a broker data directory (it is only read)')
    .description('check every segment and record of a store offline; exit 1 if problems are found')
    .option('--json', 'print the report as JSON')
    .option('--max-message-size <bytes>', 'largest valid record DATA')
    .action(async (dataDir: string, flags) => setCode(await verifyCommand(dataDir, flags)));
  // Run by bin/metaq.js from connectors/ and spout/ (broker/ may not import them); listed here for --help.
  program.addHelpText('after', `
Also:
  binlog publish|sink -c <config.json>   MySQL/MariaDB binlog publisher and replica sink (metaq binlog --help)
  spout --topic <t> --group <g> ...      a consumer group as a Storm multilang spout (metaq spout --help)`);
  return program;
}

/** Runs the command line `argv` (as process.argv: node, script, args...) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => { code = c; });
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are exits of their own; commander has already printed any usage error.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : EXIT_USAGE;
    }
    if (e instanceof MetaqError) {
      process.stderr.write(`metaq: ${e.message}\n`);
      return e.code === 'CONFIG_ERROR' || e.code === 'INVALID_ARGUMENT' ? EXIT_USAGE : 1;
    }
    throw e;
  }
}
