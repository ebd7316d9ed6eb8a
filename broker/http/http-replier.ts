import type { BrokerContext } from '../server/broker-context.js';
import type { GetReplier } from '../server/fetch-handler.js';

/** How the shared get/offset handlers answered an HTTP request. */
export type GetAnswer =
  | { readonly kind: 'value'; readonly data: Buffer }
  | { readonly kind: 'result'; readonly code: number; readonly body: string };

/**
 * Lets the TCP get/offset handlers (broker/server/fetch-handler.ts) answer an HTTP request: their one reply
 * resolves {@link answer}. A get parked in a long poll is released by {@link release} (the client went away, or
 * the server closes) and then answers at once with what the log holds.
 */
export class HttpReplier implements GetReplier {
  readonly cancellers = new Set<() => void>();
  readonly answer: Promise<GetAnswer>;
  private settle: (a: GetAnswer) => void = () => undefined;
  private released = false;

  constructor(readonly ctx: BrokerContext) {
    this.answer = new Promise((resolve) => { this.settle = resolve; });
  }

  get isClosed(): boolean {
    return this.released;
  }

  replyResult(code: number, _opaque: number, body: string): void {
    this.settle({ kind: 'result', code, body });
  }

  replyValue(_opaque: number, data: Buffer): void {
    this.settle({ kind: 'value', data });
  }

  /** Ends a long poll now; later gets through this replier do not wait. */
  release(): void {
    this.released = true;
    for (const cancel of [...this.cancellers]) cancel();
  }
}
