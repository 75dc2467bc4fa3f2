// Drives Debian's chromium through the operator's console; prints one JSON line of what the
// page showed. Usage: node console.mjs URL TOKEN SCREENSHOT.png
// It enters the token, waits for two live calls, reads their durations twice, hangs the
// first up with its button, plays the newest recording to its end and reads its waveform.
import { launch } from './chromium.mjs';

const [url, token, screenshot] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await launch();
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('console', (m) => console.error(`page: ${m.text()}`));
  await page.goto(url);
  await page.waitForSelector('#status[data-state="token"]', { timeout: 10000 });
  result.askedForToken = true;
  await page.fill('#token', token);
  await page.click('#token-form button');
  await page.waitForFunction(() => document.querySelectorAll('#calls tr').length === 2, null, { timeout: 15000 });
  const durations = () => page.evaluate(() =>
    [...document.querySelectorAll('#calls tr')].map((tr) => ({
      session: tr.dataset.session,
      duration: Number(tr.querySelector('.duration').dataset.value),
      text: tr.querySelector('.duration').textContent,
      client: tr.children[1].textContent,
    })));
  result.first = await durations();
  await sleep(2500);
  result.second = await durations();
  await page.waitForFunction(() => document.querySelectorAll('#recordings tr canvas[data-drawn]').length >= 3, null, { timeout: 10000 });
  result.plots = await page.evaluate(() => document.querySelectorAll('.plots canvas').length);
  result.statsSamples = await page.evaluate(() => document.getElementById('now-sessions').textContent);
  await page.screenshot({ path: screenshot, fullPage: true });

  // Hang up the first call with its button.
  const victim = result.second[0].session;
  result.hungUp = victim;
  await page.click(`tr[data-session="${victim}"] button.hangup`);
  await page.waitForFunction((id) => !document.querySelector(`tr[data-session="${id}"]`), victim, { timeout: 5000 });
  await sleep(1200);
  result.after = await durations();

  // Play the newest recording to its end; read its waveform.
  const row = await page.$('#recordings tr');
  result.playing = await row.getAttribute('data-name');
  result.waveform = Number(await row.$eval('canvas.wave', (c) => c.dataset.drawn));
  result.endReason = await row.$eval('td:nth-child(4)', (td) => td.textContent);
  await row.$eval('audio', (a) => a.play());
  await page.waitForFunction((name) => {
    const a = document.querySelector(`#recordings tr[data-name="${name}"] audio`);
    return a && a.dataset.ended === 'true';
  }, result.playing, { timeout: 20000 });
  result.ended = true;
  result.played = await page.evaluate((name) => document.querySelector(`#recordings tr[data-name="${name}"] audio`).duration, result.playing);
  result.error = await page.evaluate(() => (document.getElementById('error').hidden ? '' : document.getElementById('error').textContent));
} catch (e) {
  result.failure = String((e && e.message) || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
