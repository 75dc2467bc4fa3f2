// tapedeck's operator console: polls /sessions and /console/stats every second, lists
// /recordings, and draws everything on <canvas>. Plain JavaScript, nothing fetched from
// elsewhere. The token (if the daemon has one) is kept in sessionStorage, sent as
// `Authorization: Bearer` on every fetch and, for the audio player (which cannot send a
// header), as a cookie that the daemon accepts for downloads only.
'use strict';

const HISTORY = 300; // samples (seconds) kept for the plots: 5 minutes
const LEVELS = 40; // level samples kept per call
const el = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem('tapedeck-token') || '', stats: [], levels: new Map(), page: 1, pages: 1, sessionCount: -1 };

function setToken(token) {
  state.token = token;
  sessionStorage.setItem('tapedeck-token', token);
  document.cookie = 'tapedeck_token=' + encodeURIComponent(token) + '; path=/recordings; SameSite=Strict';
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    setStatus('token', 'token needed');
    throw new Error('401: this daemon needs its bearer token: enter it above');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(response.status + ': ' + (body.error || response.statusText));
  return body;
}

function setStatus(kind, text) {
  el('status').dataset.state = kind;
  el('status').textContent = text;
}

function showError(e) {
  el('error').hidden = !e;
  el('error').textContent = e ? String(e.message || e) : '';
}

// ---- live calls -------------------------------------------------------------------------

function seconds(s) {
  const whole = Math.floor(s);
  const m = Math.floor(whole / 60);
  return m + ':' + String(whole % 60).padStart(2, '0') + '.' + String(Math.floor((s - whole) * 10));
}

function cell(text, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = text;
  return td;
}

function callRow(s) {
  const tr = document.createElement('tr');
  tr.dataset.session = s.id;
  const rec = s.recording || {};
  const drift = rec.clock_ppm == null ? (rec.drift_ms || 0) + ' ms' : (rec.drift_ms || 0) + ' ms (' + rec.clock_ppm + ' ppm)';
  const duration = cell(seconds(s.duration_s), 'num duration');
  duration.dataset.value = s.duration_s;
  const code = document.createElement('code');
  code.textContent = s.id.slice(0, 8);
  code.title = s.id;
  const id = document.createElement('td');
  id.append(code);
  const level = document.createElement('td');
  const canvas = document.createElement('canvas');
  canvas.className = 'level';
  canvas.width = 120;
  canvas.height = 24;
  canvas.title = s.level_dbfs == null ? 'no decoded audio (Ogg only)' : s.level_dbfs.toFixed(1) + ' dBFS';
  level.append(canvas);
  const hang = document.createElement('td');
  const button = document.createElement('button');
  button.className = 'hangup';
  button.type = 'button';
  button.textContent = 'Hang up';
  button.addEventListener('click', () => hangup(s, button));
  hang.append(button);
  tr.append(id, cell(s.client || '–'), cell(s.state, 'state-' + s.state), duration,
    cell(s.packets_in + ' / ' + s.packets_out, 'num'), cell((s.loss * 100).toFixed(1) + ' %', 'num'),
    cell(s.concealed_ms + ' ms', 'num'), cell(drift, 'num'), level, hang);
  drawLevel(canvas, state.levels.get(s.id) || []);
  return tr;
}

async function hangup(s, button) {
  button.disabled = true;
  try {
    await api(s.location, { method: 'DELETE' });
    document.querySelector(`tr[data-session="${s.id}"]`)?.remove();
  } catch (e) {
    showError(e);
    button.disabled = false;
  }
}

function drawLevel(canvas, levels) {
  const g = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  g.clearRect(0, 0, w, h);
  g.fillStyle = '#eef0f4';
  g.fillRect(0, 0, w, h);
  const bar = w / LEVELS;
  levels.forEach((db, i) => {
    if (db == null) return;
    const v = Math.max(0, Math.min(1, (db + 60) / 60)); // -60 dBFS .. 0
    g.fillStyle = db > -3 ? '#b3261e' : '#1e7d3a';
    g.fillRect(i * bar, h - v * h, Math.max(1, bar - 1), v * h);
  });
}

async function refreshCalls() {
  const list = await api('/sessions');
  const seen = new Set();
  for (const s of list.sessions) {
    seen.add(s.id);
    const levels = state.levels.get(s.id) || [];
    levels.push(s.level_dbfs);
    if (levels.length > LEVELS) levels.shift();
    state.levels.set(s.id, levels);
  }
  for (const id of [...state.levels.keys()]) if (!seen.has(id)) state.levels.delete(id);
  list.sessions.sort((a, b) => a.created.localeCompare(b.created));
  el('calls').replaceChildren(...list.sessions.map(callRow));
  el('calls-count').textContent = String(list.count);
  el('no-calls').hidden = list.count > 0;
  if (list.count !== state.sessionCount) {
    // A call ended (or began): its recording may be new.
    state.sessionCount = list.count;
    refreshRecordings().catch(showError);
  }
}

// ---- the daemon's plots ------------------------------------------------------------------

function plot(canvas, series, colors) {
  const g = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  g.clearRect(0, 0, w, h);
  let max = 1;
  for (const s of series) for (const v of s) if (v != null && v > max) max = v;
  g.strokeStyle = '#dde1e8';
  g.beginPath();
  g.moveTo(0, h - 0.5);
  g.lineTo(w, h - 0.5);
  g.stroke();
  g.fillStyle = '#5b6475';
  g.font = '10px system-ui, sans-serif';
  g.fillText(String(Math.round(max * 10) / 10), 2, 10);
  series.forEach((s, k) => {
    g.strokeStyle = colors[k % colors.length];
    g.lineWidth = 1.5;
    g.beginPath();
    let started = false;
    s.forEach((v, i) => {
      if (v == null) return;
      const x = w - (s.length - 1 - i) * (w / (HISTORY - 1));
      const y = h - 2 - (v / max) * (h - 14);
      if (started) g.lineTo(x, y); else g.moveTo(x, y);
      started = true;
    });
    g.stroke();
  });
}

const PALETTE = ['#2f6fde', '#1e7d3a', '#c47a00', '#7b3fb8', '#b3261e', '#0f8a8a', '#5b6475'];

async function refreshStats() {
  const now = await api('/console/stats');
  const prev = state.stats[state.stats.length - 1];
  const refusedTotal = Object.values(now.offers_refused).reduce((a, b) => a + b, 0);
  const sample = {
    sessions: now.sessions_by_loop,
    lag: now.recorder_lag_ms,
    uploads: now.upload_queue,
    accepted: prev ? Math.max(0, now.offers_accepted - prev.raw.offers_accepted) : 0,
    refused: prev ? Math.max(0, refusedTotal - prev.refusedTotal) : 0,
    turn: prev && now.loop_turns > prev.raw.loop_turns
      ? (now.loop_turn_sum_us - prev.raw.loop_turn_sum_us) / (now.loop_turns - prev.raw.loop_turns) : null,
    raw: now,
    refusedTotal,
  };
  state.stats.push(sample);
  if (state.stats.length > HISTORY) state.stats.shift();
  const col = (f) => state.stats.map(f);
  const loops = now.sessions_by_loop.length;
  plot(el('plot-sessions'), Array.from({ length: loops }, (_, i) => col((s) => s.sessions[i])), PALETTE);
  plot(el('plot-offers'), [col((s) => s.accepted), col((s) => s.refused)], ['#1e7d3a', '#b3261e']);
  plot(el('plot-lag'), [col((s) => s.lag)], ['#c47a00']);
  plot(el('plot-turn'), [col((s) => s.turn)], ['#7b3fb8']);
  plot(el('plot-uploads'), [col((s) => s.uploads)], ['#0f8a8a']);
  el('now-sessions').textContent = now.sessions_by_loop.join(' + ');
  el('now-refused').textContent = now.offers_accepted + ' / ' + refusedTotal + ' total';
  el('now-lag').textContent = now.recorder_lag_ms.toFixed(0);
  el('now-turn').textContent = sample.turn == null ? '–' : sample.turn.toFixed(0);
  el('now-uploads').textContent = now.upload_queue == null ? 'no --upload' : String(now.upload_queue);
  const reasons = Object.entries(now.offers_refused).filter(([, n]) => n > 0).map(([r, n]) => r + ' ' + n);
  el('refusals').textContent = reasons.length ? reasons.join(', ') : 'none';
}

// ---- recordings ---------------------------------------------------------------------------

function size(bytes) {
  if (bytes < 1024) return bytes + ' B';
  if (bytes < 1048576) return (bytes / 1024).toFixed(1) + ' KiB';
  return (bytes / 1048576).toFixed(1) + ' MiB';
}

async function drawWave(canvas, url) {
  try {
    const wave = await api(url);
    const g = canvas.getContext('2d');
    const { width: w, height: h } = canvas;
    g.fillStyle = '#2f6fde';
    const step = w / wave.peaks.length;
    wave.peaks.forEach((p, i) => {
      const v = Math.max(1, (p / 255) * h);
      g.fillRect(i * step, (h - v) / 2, Math.max(1, step), v);
    });
    canvas.dataset.drawn = String(wave.peaks.filter((p) => p > 0).length);
  } catch (e) {
    canvas.dataset.drawn = 'none';
    canvas.title = String(e.message || e);
  }
}

function recordingRow(r) {
  const tr = document.createElement('tr');
  tr.dataset.name = r.name;
  const wave = document.createElement('canvas');
  wave.className = 'wave';
  wave.width = 240;
  wave.height = 36;
  drawWave(wave, r.waveform);
  const waveCell = document.createElement('td');
  waveCell.append(wave);
  const audio = document.createElement('audio');
  audio.controls = true;
  audio.preload = 'none';
  audio.src = r.url;
  audio.addEventListener('ended', () => { audio.dataset.ended = 'true'; });
  const listen = document.createElement('td');
  listen.append(audio);
  const loss = r.loss == null ? 'unknown' : (r.loss * 100).toFixed(1) + ' %';
  tr.append(cell(r.name), cell(r.seconds == null ? '?' : seconds(r.seconds), 'num'), cell(size(r.size), 'num'),
    cell(r.end_reason), cell(loss, 'num'), waveCell, listen);
  return tr;
}

async function refreshRecordings() {
  const list = await api('/recordings?page=' + state.page + '&per_page=10');
  const playing = [...document.querySelectorAll('#recordings audio')].some((a) => !a.paused);
  if (playing) return; // do not pull a player from under the listener
  state.pages = Math.max(1, list.pages);
  el('recordings').replaceChildren(...list.recordings.map(recordingRow));
  el('recordings-count').textContent = list.total + ' on disk';
  el('page').textContent = 'page ' + list.page + ' of ' + state.pages;
  el('newer').disabled = state.page <= 1;
  el('older').disabled = state.page >= state.pages;
}

// ---- the loop -----------------------------------------------------------------------------

async function tick() {
  try {
    await Promise.all([refreshCalls(), refreshStats()]);
    showError(null);
    setStatus('live', 'live');
  } catch (e) {
    showError(e);
    if (el('status').dataset.state !== 'token') setStatus('error', 'error');
  }
}

el('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken(el('token').value.trim());
  state.sessionCount = -1;
  tick();
});
el('newer').addEventListener('click', () => { state.page = Math.max(1, state.page - 1); refreshRecordings().catch(showError); });
el('older').addEventListener('click', () => { state.page += 1; refreshRecordings().catch(showError); });
const fromAddress = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromAddress) history.replaceState(null, '', location.pathname);
setToken(fromAddress || state.token);
el('token').value = state.token;
tick();
setInterval(tick, 1000);
setInterval(() => refreshRecordings().catch(showError), 10000);
