// Drives Debian's chromium through one call on the demo page; prints one JSON line of what
// the page showed. Usage: node demo.mjs URL TONE.wav SCREENSHOT.png CALL_SECONDS [refused]
// With "refused", it only clicks Start and reports the error the page shows.
import { launch } from './chromium.mjs';

const [url, tone, screenshot, seconds, mode] = process.argv.slice(2);
const callMs = Number(seconds || 5) * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await launch([
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${tone}`,
  '--allow-loopback-in-peer-connection',
]);
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 420, height: 900 } });
  page.on('console', (m) => console.error(`page: ${m.text()}`));
  await page.goto(url);
  await page.click('#start');
  if (mode === 'refused') {
    await page.waitForSelector('#state[data-state="error"]', { timeout: 15000 });
    result.error = await page.textContent('#error');
    result.startEnabled = await page.isEnabled('#start');
    await page.screenshot({ path: screenshot, fullPage: true });
    throw null;
  }
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 15000 });
  const connectedAt = Date.now();
  const read = () => page.evaluate(() => {
    const el = (id) => document.getElementById(id);
    return {
      received: Number(el('packets-received').dataset.value || 0),
      at: Number(el('packets-received').dataset.at || 0),
      sent: Number(el('packets-sent').dataset.value || 0),
      sampleLevel: Number(el('sample-level-text').dataset.value || 0),
      micLevel: Number(el('mic-level-text').dataset.value || 0),
      rtt: el('rtt').textContent,
      jitter: el('jitter').textContent,
      loss: el('loss').textContent,
      codec: el('codec').textContent,
      session: el('session').textContent,
      recording: el('recording').textContent,
      state: el('state').dataset.state,
      error: el('error').hidden ? '' : el('error').textContent,
    };
  });
  await sleep(1500);
  const first = await read();
  await sleep(callMs - 1500 - 500);
  const second = await read();
  result.rate = (second.received - first.received) / ((second.at - first.at) / 1000);
  Object.assign(result, second);
  await page.screenshot({ path: screenshot, fullPage: true });
  result.callMs = Date.now() - connectedAt;
  await page.click('#stop');
  await page.waitForSelector('#state[data-state="closed"]', { timeout: 5000 });
  result.afterStop = await read();
  result.pageCallMs = await page.evaluate(() => Number(document.body.dataset.stoppedAt) - Number(document.body.dataset.connectedAt));
} catch (e) {
  if (e !== null) result.failure = String(e && e.message || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
