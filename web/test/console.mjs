// The web console in a real browser (Debian's chromium, headless, driven
// by playwright-core) against a real rr-gateway: e2e/web_test.go starts
// the gateway, its agent and mailpit, runs this with their addresses in
// the environment, and checks what it leaves in RR_OUT. Every page is
// saved as a screenshot in RR_ARTIFACTS.
import { chromium } from 'playwright-core';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const url = env('RR_URL'), out = env('RR_OUT'), shots = env('RR_ARTIFACTS');
const result = {};
const step = (s) => console.log('web test:', s);

async function mails() {
  const r = await fetch(env('RR_MAILPIT') + '/api/v1/messages');
  const j = await r.json();
  return (j.messages || []).filter((m) => (m.To || []).some((t) => t.Address === env('RR_MAIL_TO')));
}
// newCode waits for a mail beyond the first `before` and returns its code.
async function newCode(before) {
  for (let i = 0; i < 150; i++) {
    const list = await mails();
    if (list.length > before) {
      const r = await fetch(env('RR_MAILPIT') + '/api/v1/message/' + list[0].ID);
      const m = await r.json();
      const code = (m.Text || '').match(/\b(\d{6})\b/);
      if (code) return code[1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no code mailed');
}

const userDir = mkdtempSync(join(tmpdir(), 'rr-chromium-'));
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  ignoreHTTPSErrors: true, // the test's self-signed certificate
  acceptDownloads: true,
  viewport: { width: 1280, height: 800 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
// Refused requests (401 before login, the wrong password) log "Failed
// to load resource"; anything else logged as an error (a CSP violation) is
// a fault.
page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });

// until polls fn in the page (page.waitForFunction compiles its predicate
// with eval, which the console's Content-Security-Policy forbids).
async function until(fn, arg) {
  for (let i = 0; i < 300; i++) {
    if (await page.evaluate(fn, arg)) return;
    await page.waitForTimeout(100);
  }
  throw new Error('timed out waiting for ' + fn.toString());
}
const shot = (name) => page.screenshot({ path: join(shots, name + '.png') });

// screenText is the terminal's buffer as text.
const screenText = () => page.evaluate(() => {
  const b = window.rrTerm.buffer.active; const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
});
async function waitScreen(re, what) {
  for (let i = 0; i < 200; i++) {
    const m = (await screenText()).match(re);
    if (m) return m;
    await page.waitForTimeout(100);
  }
  throw new Error(`terminal never showed ${what}:\n${await screenText()}`);
}
async function typeLine(s) { await page.keyboard.type(s); await page.keyboard.press('Enter'); }

// answerFactors answers the passphrase, one wrong code, then the right one.
async function answerFactors() {
  await page.waitForSelector('#prompt');
  if (!(await page.textContent('#prompt')).startsWith('Passphrase for web-01')) throw new Error('first prompt: ' + await page.textContent('#prompt'));
  const before = (await mails()).length;
  await page.fill('#answer', env('RR_PASSPHRASE'));
  await page.click('#confirm');
  await until(() => document.querySelector('#prompt')?.textContent.startsWith('Code sent to'));
  await shot('code');
  if (!result.wrongCode) { // a wrong code is refused, and asked again
    await page.fill('#answer', '000000');
    await page.click('#confirm');
    await until(() => document.querySelector('#prompt')?.textContent.startsWith('Code sent to'));
    result.wrongCode = 'asked again';
  }
  await page.fill('#answer', await newCode(before));
  await page.click('#confirm');
  await until(() => document.querySelector('#term-status')?.textContent === 'live');
}

try {
  step('a wrong password is refused');
  await page.goto(url);
  await page.waitForSelector('#username');
  await page.fill('#username', 'alice');
  await page.fill('#password', 'not-the-password');
  await page.click('#login');
  await until(() => document.querySelector('#login-error')?.textContent);
  result.wrongPassword = await page.textContent('#login-error');
  await shot('login-refused');

  step('log in');
  await page.fill('#password', env('RR_PASSWORD'));
  await page.click('#login');
  await page.waitForSelector('#hosts button[data-host="web-01"]:not([disabled])');
  await page.fill('#search', 'web');
  await shot('hosts');

  step('start a session: passphrase, code, echo hello');
  await page.click('button[data-host="web-01"]');
  await answerFactors();
  await typeLine('echo hel""lo');
  await waitScreen(/^hello$/m, 'hello');
  await typeLine('echo A=$(stty size)');
  const [, r1, c1] = await waitScreen(/^A=(\d+) (\d+)$/m, 'stty size');
  await shot('terminal-bottom');

  step('dock right: the terminal is resized');
  await page.click('[data-dock="right"]');
  await until((c) => window.rrTerm.cols !== c, Number(c1));
  await typeLine('echo B=$(stty size)');
  const [, r2, c2] = await waitScreen(/^B=(\d+) (\d+)$/m, 'stty size after the resize');
  if (r1 === r2 && c1 === c2) throw new Error(`stty size did not change: ${r1} ${c1}`);
  result.sizes = [`${r1} ${c1}`, `${r2} ${c2}`];
  await shot('terminal-right');
  await typeLine('exit');
  await until(() => document.querySelector('#term-status')?.dataset.closed === '1');
  await page.click('[data-dock="bottom"]');
  await page.click('#term-hide');

  step('session log: download the closed session');
  await page.goto(url + '/#/sessions');
  await page.waitForSelector('#sessions a[data-download]');
  await shot('sessions');
  const id = await page.getAttribute('#sessions a[data-download]', 'data-download'); // newest first: the one just closed
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`a[data-download="${id}"]`)]);
  result.download = join(out, 'download.gz');
  await dl.saveAs(result.download);
  result.webSession = id;

  step('watch a live SSH session');
  const live = env('RR_SSH_SESSION');
  await page.click(`button[data-watch="${live}"]`);
  await waitScreen(/Passphrase for web-01:/, 'the watch\'s passphrase prompt');
  await typeLine(env('RR_PASSPHRASE'));
  await waitScreen(/^ssh-ready$/m, "the watched session's screen"); // its replay resets the terminal first
  await shot('watch');
  await page.keyboard.type('q');
  await waitScreen(/rr: stopped watching/, 'the watch stopping');
  result.watched = !(await screenText()).includes(env('RR_PASSPHRASE'));
  await page.click('#term-hide');

  step('close a live SSH session');
  await page.click(`button[data-close="${live}"]`);
  await page.waitForSelector('#answer');
  await shot('close-reason');
  await page.fill('#answer', 'closed from the web test');
  await page.click('#confirm');
  await page.waitForSelector(`tr[data-session="${live}"] .pill.killed`);
  await shot('sessions-after-close');

  step('respond to an event');
  await page.goto(url + '/#/events');
  await page.waitForSelector(`tr[data-event="${env('RR_EVENT')}"]`);
  await shot('events');
  await page.click(`tr[data-event="${env('RR_EVENT')}"]`);
  await page.waitForSelector('#respond');
  await shot('event');
  await page.click('#respond');
  await answerFactors();
  await typeLine('echo event-$((6*7))');
  await waitScreen(/^event-42$/m, 'event-42');
  result.eventBanner = (await screenText()).includes(env('RR_EVENT'));
  await shot('terminal-event');
  await typeLine('exit');
  await until(() => document.querySelector('#term-status')?.dataset.closed === '1');

  step('a terminal in its own window');
  await page.goto(url + '/#/hosts');
  await page.click('button[data-host="web-01"]');
  await page.waitForSelector('#prompt');
  const before = (await mails()).length;
  await page.fill('#answer', env('RR_PASSPHRASE'));
  await page.click('#confirm');
  await until(() => document.querySelector('#prompt')?.textContent.startsWith('Code sent to'));
  await page.check('input[name="dock"][value="window"]');
  await page.fill('#answer', await newCode(before));
  const [popup] = await Promise.all([ctx.waitForEvent('page'), page.click('#confirm')]);
  await popup.waitForSelector('#term-status');
  for (let i = 0; i < 300 && (await popup.textContent('#term-status')) !== 'live'; i++) await popup.waitForTimeout(100);
  await popup.keyboard.type('echo win""dow'); await popup.keyboard.press('Enter');
  for (let i = 0; ; i++) {
    const text = await popup.evaluate(() => { const b = window.rrTerm.buffer.active; const l = []; for (let j = 0; j < b.length; j++) l.push(b.getLine(j).translateToString(true)); return l.join('\n'); });
    if (/^window$/m.test(text)) break;
    if (i > 200) throw new Error('the window terminal never echoed:\n' + text);
    await popup.waitForTimeout(100);
  }
  await popup.screenshot({ path: join(shots, 'terminal-window.png') });
  result.window = true;
  await popup.keyboard.type('exit'); await popup.keyboard.press('Enter');
  await popup.close();

  step('log out');
  await page.click('#logout');
  await page.waitForSelector('#username');
  result.errors = errors;
} catch (e) {
  await shot('failure').catch(() => {});
  console.error('web test failed:', e.message, '\nbrowser errors:', errors.join('\n'));
  process.exitCode = 1;
} finally {
  writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 2));
  await ctx.close();
  rmSync(userDir, { recursive: true, force: true });
}
