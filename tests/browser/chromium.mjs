// Debian's chromium, headless, with the flags verified on this machine (TOOLING.md), for the
// page drivers (demo.mjs, console.mjs): `extra` adds a driver's own flags.
import { chromium } from 'playwright-core';

export function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      ...extra,
    ],
  });
}
