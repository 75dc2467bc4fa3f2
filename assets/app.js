// tapedeck demo page: one call from this browser to the daemon that served the page.
// Plain JavaScript, no framework, nothing fetched from elsewhere.
'use strict';

const $ = (id) => document.getElementById(id);
// A daemon started with --token needs it on every call: open the page as /#token=... (the
// fragment never leaves the browser, so it is not in any server log).
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const auth = token ? { Authorization: `Bearer ${token}` } : {};
const call = { pc: null, session: null, location: null, mic: null, ctx: null, timers: [], started: 0, connectTimer: null };

function setState(state) {
  $('state').textContent = state;
  $('state').dataset.state = state;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
}

function clearError() {
  $('error').textContent = '';
  $('error').hidden = true;
}

function setFact(id, text, value) {
  const el = $(id);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
}

// Resolves when ICE gathering is complete (tapedeck takes no trickled candidates).
function gatheringComplete(pc, limitMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener('icegatheringstatechange', check); resolve(); };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    pc.addEventListener('icegatheringstatechange', check);
    setTimeout(done, limitMs);
  });
}

// A level meter fed from a stream through an AnalyserNode (RMS, 0..1).
function meter(stream, meterId) {
  const source = call.ctx.createMediaStreamSource(stream);
  const analyser = call.ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    const rms = Math.sqrt(sum / buf.length);
    $(meterId).value = Math.min(1, rms * 3);
    setFact(meterId + '-text', rms.toFixed(3), rms);
  }, 100);
  call.timers.push(timer);
}

async function start() {
  clearError();
  $('start').disabled = true;
  setState('starting');
  try {
    call.mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    });
  } catch (e) {
    return fail(`No microphone: ${e.message || e.name}. Allow microphone access and try again.`);
  }
  call.ctx = new AudioContext();
  meter(call.mic, 'mic-level');

  const pc = new RTCPeerConnection({ iceServers: [] });
  call.pc = pc;
  for (const track of call.mic.getAudioTracks()) pc.addTrack(track, call.mic);
  pc.ontrack = (event) => {
    const stream = event.streams[0] || new MediaStream([event.track]);
    $('remote').srcObject = stream; // Chrome feeds WebAudio from a remote stream only while it plays
    meter(stream, 'sample-level');
  };
  pc.onconnectionstatechange = () => {
    setState(pc.connectionState);
    if (pc.connectionState === 'connected') {
      clearTimeout(call.connectTimer);
      call.started = performance.now();
      document.body.dataset.connectedAt = String(call.started);
    }
    if (pc.connectionState === 'failed') showError('The connection failed (ICE or DTLS). Is UDP to the server blocked?');
  };

  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, 3000);
    const response = await fetch('/offer', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...auth },
      body: JSON.stringify({ type: 'offer', sdp: pc.localDescription.sdp }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      return fail(`The server refused the call (${response.status}): ${body.error || response.statusText}`);
    }
    call.session = body.session;
    // The session's URL: behind a load balancer it names this daemon (/n/<node>/sessions/...).
    call.location = body.location || `/sessions/${encodeURIComponent(body.session)}`;
    setFact('session', body.session);
    setFact('recording', body.recording || '–');
    await pc.setRemoteDescription({ type: 'answer', sdp: body.sdp });
  } catch (e) {
    return fail(`Could not set up the call: ${e.message || e}`);
  }
  $('stop').disabled = false;
  call.connectTimer = setTimeout(() => {
    if (pc.connectionState !== 'connected') showError('ICE did not connect within 10 s. Is UDP to the server blocked?');
  }, 10000);
  call.timers.push(setInterval(updateStats, 1000));
}

async function updateStats() {
  const pc = call.pc;
  if (!pc) return;
  if (call.started) setFact('duration', `${((performance.now() - call.started) / 1000).toFixed(0)} s`);
  const report = await pc.getStats();
  const codecs = new Map();
  let out = null, inb = null, pair = null;
  report.forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') out = s;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') inb = s;
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    if (s.type === 'codec') codecs.set(s.id, s);
  });
  if (out) setFact('packets-sent', String(out.packetsSent), out.packetsSent);
  if (inb) {
    const lost = Math.max(0, inb.packetsLost || 0);
    const total = inb.packetsReceived + lost;
    setFact('packets-received', String(inb.packetsReceived), inb.packetsReceived);
    $('packets-received').dataset.at = String(statsTime(inb));
    setFact('packets-lost', String(lost), lost);
    setFact('loss', total ? `${((100 * lost) / total).toFixed(1)} %` : '–', total ? lost / total : 0);
    setFact('jitter', `${((inb.jitter || 0) * 1000).toFixed(1)} ms`, inb.jitter || 0);
    const codec = codecs.get(inb.codecId);
    if (codec) setFact('codec', `${codec.mimeType} (payload type ${codec.payloadType})`);
  }
  if (pair && pair.currentRoundTripTime !== undefined) {
    setFact('rtt', `${(pair.currentRoundTripTime * 1000).toFixed(1)} ms`, pair.currentRoundTripTime);
  }
}

// When the stats were taken, in ms on the page's performance clock.
function statsTime(stats) {
  return stats.timestamp ? stats.timestamp - performance.timeOrigin : performance.now();
}

function teardown() {
  call.timers.forEach(clearInterval);
  call.timers = [];
  clearTimeout(call.connectTimer);
  if (call.pc) call.pc.close();
  if (call.mic) call.mic.getTracks().forEach((t) => t.stop());
  if (call.ctx) call.ctx.close();
  call.pc = null;
  call.mic = null;
  call.ctx = null;
  $('start').disabled = false;
  $('stop').disabled = true;
}

function fail(message) {
  showError(message);
  teardown();
  setState('error');
}

// Hangs up: tells the server first (so the recording ends now), then closes the connection.
async function stop() {
  document.body.dataset.stoppedAt = String(performance.now());
  const session = call.session;
  const sessionUrl = call.location;
  call.session = null;
  $('stop').disabled = true;
  if (session) {
    try {
      const response = await fetch(sessionUrl, { method: 'DELETE', headers: auth });
      // 404: the server had already ended the call (for example after a network loss).
      if (!response.ok && response.status !== 404) {
        const body = await response.json().catch(() => ({}));
        showError(`Hanging up failed (${response.status}): ${body.error || response.statusText}`);
      }
    } catch (e) {
      showError(`Hanging up failed: ${e.message || e}`);
    }
  }
  teardown();
  setState('closed');
}

$('start').addEventListener('click', start);
$('stop').addEventListener('click', stop);
window.addEventListener('pagehide', () => {
  if (call.session) fetch(call.location, { method: 'DELETE', headers: auth, keepalive: true });
});
