import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium binary (the /usr/bin/chromium wrapper script fails under Playwright). */
export const CHROMIUM = process.env.FLEET_CHROMIUM ?? '/usr/lib/chromium/chromium';

/** Screenshots of the browser tests: test-artifacts/<suite>/ at the repository root (gitignored). */
export function artifactDir(suite: string): string {
  const dir = join(__dirname, '..', '..', '..', 'test-artifacts', suite);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Headless Chromium driven by playwright-core; the flags let it run as root in a container. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update'],
  });
}

/** Collects the page's uncaught errors and console errors, so a test can assert there were none. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  // A 401 or the logs endpoint's 404 is logged by Chromium as a failed load: expected, not a page error.
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`); });
  return errors;
}

export { until } from './poll';
