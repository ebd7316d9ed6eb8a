/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven through playwright-core (which downloads
 * no browser of its own). A missing Chromium is an error naming the package, never a skip: a dashboard test that
 * does not run is a dashboard that is not tested.
 */
import { access, constants } from 'node:fs/promises';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser; `METAQ_CHROMIUM` points elsewhere. */
export const CHROMIUM_PATH = process.env.METAQ_CHROMIUM ?? '/usr/bin/chromium';

export interface LaunchChromiumOptions {
  /** How long to wait for the browser to start. Default 30 s (a cold start on a loaded CI machine is slow). */
  readonly timeoutMs?: number;
}

/** Launches headless Chromium; the caller closes it (`browser.close()`) in `after`. */
export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<Browser> {
  try {
    await access(CHROMIUM_PATH, constants.X_OK);
  } catch {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install the Debian package "chromium" ` +
      '(apt-get install -y chromium) or set METAQ_CHROMIUM to a Chromium executable');
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: options.timeoutMs ?? 30_000,
    // The sandbox needs user namespaces, which containers and root (CI) do not give; /dev/shm there is tiny.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** What went wrong on a page: console errors and uncaught exceptions, collected from the moment of the call. */
export interface PageProblems {
  readonly consoleErrors: string[];
  readonly pageErrors: string[];
  /** Requests that failed at the network level or answered >= 400 (those also log console errors in Chromium). */
  readonly failedRequests: string[];
  /** Everything above, one line each; empty when the page is clean. */
  all(): string[];
}

/** Starts collecting `page`'s console errors, page errors and failed requests. */
export function watchPageProblems(page: Page): PageProblems {
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const failedRequests: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error: Error) => pageErrors.push(error.stack ?? error.message));
  page.on('requestfailed', (request) => {
    failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText ?? 'failed'}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) failedRequests.push(`${response.request().method()} ${response.url()}: ${response.status()}`);
  });
  return {
    consoleErrors,
    pageErrors,
    failedRequests,
    all: () => [
      ...consoleErrors.map((e) => `console error: ${e}`),
      ...pageErrors.map((e) => `page error: ${e}`),
      ...failedRequests.map((e) => `request: ${e}`),
    ],
  };
}
