// Headless-browser sign-in test of Raccordo's console, driven by Debian's Chromium.
//
// Usage: node console-signin.mjs CONFIG.json
//   CONFIG.json: {"console": "https://127.0.0.1:PORT/console/", "login": "analista",
//                 "screenshot_dir": "/path/dir",
//                 "password": "test", "timeout_ms": 120000, "chromium": "/usr/bin/chromium"}
//   (the last three are optional, with these defaults)
//
// Prints ONE line of JSON on stdout at the end (everything else goes to stderr); exit code 0
// when every step ran, 1 otherwise, with {"error": message, "step": name} in the report and
// a best-effort screenshot error-<step>.png. Steps (fields of the report):
//   a visit:       lang_attr, signin_text, title
//   b sign_in:     click [data-testid=sign-in], provider login form (login/password inputs,
//                  devInteractions), consent "Continue" if shown (consent_shown), back on the
//                  console (any console URL other than .../callback)
//   c home:        home_title, roles_shown (data-role of every [data-testid=role-section]),
//                  lang_attr_home
//   d cookies:     cookies: [{name, secure, httpOnly, sameSite, path}] of the __Host- cookies
//                  of the console's host; other_cookie_names: the other cookies of that host
//                  (the provider's _session, _interaction... appear there too: cookies ignore ports)
//   e screenshot:  <screenshot_dir>/console-home-it.png (full page)
//   e2 monitoring (only when config.monitoring = {"period": "2026"}): follow
//                  [data-testid=monitoring-link], make a release of that period with the form,
//                  then monitoring_made, monitoring_charts (data-indicator of every chart),
//                  monitoring_bars, monitoring_flagged (bars with data-flag=Q),
//                  monitoring_release (data-release), console-monitoring-it.png
//   f csrf:        csrf_missing_status, csrf_forged_status (POST <console>logout with the
//                  browser's cookies, no redirects followed)
//   g lang_en:     click [data-testid=lang-en]; home_title_en, lang_attr_en, console-home-en.png
//   h sign_out:    click [data-testid=sign-out]; provider "Yes, sign me out" if shown
//                  (logout_confirm_shown); after_signout_url, signed_out (sign-in link visible)
//   i revisit:     still_signed_out (sign-in link visible after visiting the console again)
// Also: steps_done (names of the steps completed), external_requests_blocked (the browser may
// only talk to loopback addresses; anything else is aborted and listed here).

import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

for (const method of ['log', 'info', 'debug']) {
  console[method] = (...args) => console.error(...args);
}

const report = { steps_done: [] };
let currentStep = 'config';
let printed = false;
function finish(code) {
  if (!printed) {
    printed = true;
    process.stdout.write(`${JSON.stringify(report)}\n`);
  }
  process.exit(code);
}
function recordError(err) {
  if (report.error === undefined) {
    report.error = String(err?.message ?? err).replace(/\u001b\[[0-9;]*m/g, '').split('\n').slice(0, 6).join('\n');
    report.step = currentStep;
  }
}

let config;
try {
  config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  if (typeof config.console !== 'string' || !config.console.endsWith('/')) throw new Error('config.console must be a URL ending with "/"');
  if (typeof config.login !== 'string') throw new Error('config.login is required');
  if (typeof config.screenshot_dir !== 'string') throw new Error('config.screenshot_dir is required');
  mkdirSync(config.screenshot_dir, { recursive: true });
} catch (err) {
  recordError(err);
  finish(1);
}

const consoleUrl = config.console;
const password = config.password ?? 'test';
const timeoutMs = Number(config.timeout_ms ?? 120000);
const shot = (name) => join(config.screenshot_dir, name);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Whole-run watchdog and signals: report what we have, close Chromium (at most 5 s; on
// exit Playwright also kills what is left of it), exit 1.
let browser;
async function abort(why) {
  recordError(new Error(why));
  await Promise.race([browser?.close().catch(() => {}), sleep(5000)]);
  finish(1);
}
setTimeout(() => abort(`timed out after ${timeoutMs} ms`), timeoutMs).unref();
process.on('SIGTERM', () => abort('SIGTERM'));
process.on('SIGINT', () => abort('SIGINT'));

const isLoopback = (hostname) => hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || /^127\./.test(hostname);
// The console's own pages, other than the OAuth callback (which redirects onwards).
function onConsole(url) {
  const u = typeof url === 'string' ? url : url.href;
  if (!u.startsWith(consoleUrl)) return false;
  return !new URL(u).pathname.endsWith('/callback');
}
async function visible(locator, ms = 5000) {
  return locator.first().waitFor({ state: 'visible', timeout: ms }).then(() => true, () => false);
}

// Polls until the page is on the console (and loaded), running the first matching handler
// (a provider page needing a click) on the way.
async function settleOnConsole(page, handlers, ms = 30000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (onConsole(page.url())) {
      await page.waitForLoadState('load');
      if (onConsole(page.url())) return 'console';
    }
    let handled = false;
    for (const h of handlers) {
      if (await h.locator.first().isVisible().catch(() => false)) {
        const before = page.url();
        const result = await h.run();
        handled = true;
        if (result) return result;
        // Do not click the same form twice: wait for the navigation it starts.
        await page.waitForURL((u) => u.href !== before, { timeout: 10000, waitUntil: 'commit' }).catch(() => {});
        break;
      }
    }
    if (!handled) await sleep(150);
  }
  throw new Error(`did not come back to the console (at ${page.url()})`);
}

let page;
async function step(name, fn) {
  currentStep = name;
  console.error(`console-signin: step ${name}`);
  await fn();
  report.steps_done.push(name);
}

async function run() {
  const { chromium } = await import('playwright-core');
  await step('launch', async () => {
    browser = await chromium.launch({
      executablePath: config.chromium ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'it-IT' });
    context.setDefaultTimeout(15000);
    context.setDefaultNavigationTimeout(20000);
    report.external_requests_blocked = [];
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && !isLoopback(url.hostname)) {
        report.external_requests_blocked.push(url.href);
        return route.abort('blockedbyclient');
      }
      return route.continue();
    });
    page = await context.newPage();
    page.on('console', (msg) => console.error(`console-signin: page ${msg.type()}: ${msg.text()}`));
  });

  await step('visit', async () => {
    await page.goto(consoleUrl, { waitUntil: 'load' });
    report.title = await page.title();
    report.lang_attr = await page.evaluate(() => document.documentElement.lang);
    report.signin_text = (await page.locator('[data-testid=sign-in]').innerText()).trim();
  });

  await step('sign_in', async () => {
    await page.locator('[data-testid=sign-in]').click();
    const login = page.locator('input[name=login]');
    await login.waitFor({ state: 'visible' });
    report.login_page_url = page.url().split('?')[0];
    await login.fill(config.login);
    await page.locator('input[name=password]').fill(password);
    await page.locator('form:has(input[name=login]) [type=submit]').click();
    report.consent_shown = false;
    await settleOnConsole(page, [{
      locator: page.locator('form:has(input[name=prompt][value=consent]) [type=submit]'),
      run: async () => {
        report.consent_shown = true;
        await page.locator('form:has(input[name=prompt][value=consent]) [type=submit]').click();
      },
    }]);
  });

  await step('home', async () => {
    report.home_title = (await page.locator('[data-testid=home-title]').innerText()).trim();
    report.roles_shown = await page.locator('[data-testid=role-section]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-role')));
    report.lang_attr_home = await page.evaluate(() => document.documentElement.lang);
  });

  await step('cookies', async () => {
    // The console's own host (localhost in the Rust tests), whatever the provider's host is.
    const consoleHost = new URL(config.console).hostname;
    const all = (await page.context().cookies()).filter((c) => c.domain === consoleHost || c.domain === '.' + consoleHost);
    report.cookies = all.filter((c) => c.name.startsWith('__Host-')).map(({
      name, secure, httpOnly, sameSite, path,
    }) => ({
      name, secure, httpOnly, sameSite, path,
    }));
    report.other_cookie_names = all.filter((c) => !c.name.startsWith('__Host-')).map((c) => c.name);
  });

  await step('screenshot', async () => {
    await page.screenshot({ path: shot('console-home-it.png'), fullPage: true });
  });

  if (config.monitoring) {
    await step('monitoring', async () => {
      await page.locator('[data-testid=monitoring-link]').click();
      await page.waitForLoadState('load');
      await page.locator('input[name=period]').fill(config.monitoring.period);
      await page.locator('[data-testid=make-release]').click();
      await page.locator('[data-testid=chart]').first().waitFor({ state: 'visible' });
      report.monitoring_made = await visible(page.locator('[data-testid=release-made]'));
      report.monitoring_charts = await page.locator('[data-testid=chart]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-indicator')));
      report.monitoring_bars = await page.locator('[data-testid=chart] rect[data-flag]').count();
      report.monitoring_flagged = await page.locator('[data-testid=chart] rect[data-flag=Q]').count();
      report.monitoring_release = await page.locator('[data-testid=release]').getAttribute('data-release');
      await page.screenshot({ path: shot('console-monitoring-it.png'), fullPage: true });
      await page.goto(consoleUrl, { waitUntil: 'load' });
    });
  }

  await step('csrf', async () => {
    const missing = await page.request.post(`${consoleUrl}logout`, { form: {}, maxRedirects: 0 });
    report.csrf_missing_status = missing.status();
    const forged = await page.request.post(`${consoleUrl}logout`, { form: { csrf: 'forged' }, maxRedirects: 0 });
    report.csrf_forged_status = forged.status();
  });

  await step('lang_en', async () => {
    await page.locator('[data-testid=lang-en]').click();
    await page.waitForLoadState('load');
    report.home_title_en = (await page.locator('[data-testid=home-title]').innerText()).trim();
    report.lang_attr_en = await page.evaluate(() => document.documentElement.lang);
    await page.screenshot({ path: shot('console-home-en.png'), fullPage: true });
  });

  await step('sign_out', async () => {
    const before = page.url();
    await page.locator('[data-testid=sign-out]').click();
    report.logout_confirm_shown = false;
    // Leave the current page first (the console URL may be the same before and after).
    await page.waitForURL((u) => u.href !== before, { timeout: 5000, waitUntil: 'commit' }).catch(() => {});
    const yes = page.locator('button[name=logout][value=yes]');
    report.signout_landing = await settleOnConsole(page, [{
      locator: yes,
      run: async () => {
        report.logout_confirm_shown = true;
        await yes.click();
      },
    }, {
      // The provider's own "Sign-out Success" page: it had no post_logout_redirect_uri to go to.
      locator: page.locator('h1', { hasText: 'Sign-out Success' }),
      run: async () => 'provider_success_page',
    }]);
    report.after_signout_url = page.url();
    report.signed_out = await visible(page.locator('[data-testid=sign-in]'));
  });

  await step('revisit', async () => {
    await page.goto(consoleUrl, { waitUntil: 'load' });
    report.still_signed_out = await visible(page.locator('[data-testid=sign-in]'));
  });
}

let exitCode = 0;
try {
  await run();
} catch (err) {
  recordError(err);
  exitCode = 1;
  if (page) {
    report.error_url = page.url();
    await page.screenshot({ path: shot(`error-${currentStep}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
  }
}
await Promise.race([browser?.close().catch(() => {}), sleep(10000)]);
finish(exitCode);
