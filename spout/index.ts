/**
 * metaq's stream-compute spout (`import { MetaqSpout } from 'metaq/spout'`): a consumer group in Storm's ISpout shape,
 * with a Node Readable and an Observable face, and Storm's multilang protocol for `metaq spout`.
 *
 * @example
 * ```ts
 * import { MetaqSpout } from 'metaq/spout';
 * const spout = new MetaqSpout({ client: { serverUrl: 'meta://127.0.0.1:8123' }, topic: 'words', group: 'wc' });
 * spout.tuples$().subscribe((t) => { console.log(t.values); t.ack(); });
 * ```
 */
export { MetaqSpout, SpoutTuple, type SpoutOptions, type SpoutStats } from './metaq-spout.js';
export { MultilangSpout, Schemes, type MultilangSpoutOptions, type SchemeName, type StormConf } from './multilang.js';
