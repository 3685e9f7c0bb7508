// pgqueue dashboard: plain DOM, no framework, no build step. Every piece of data from the
// server is put on the page as text (textContent / createTextNode), never as HTML.
'use strict';
(function () {
  // ---------------------------------------------------------------- settings and helpers
  const PLACEHOLDER = '__PGQUEUE' + '_API__'; // split so a server-side replace cannot touch it
  const metaApi = document.querySelector('meta[name="pgqueue-api"]');
  let API = metaApi ? metaApi.getAttribute('content') || '' : '/api';
  if (API === PLACEHOLDER) API = '/api'; // page opened without the server's substitution
  API = API.replace(/\/+$/, '');

  const STATUSES = ['new', 'retained', 'retry', 'released', 'failed', 'cancelled', 'expired'];
  const PAGE = 50; // tasks per page (the API caps at 100)
  const FEED_MAX = 50;
  const BUCKET_MS = 10000; // throughput buckets of 10 s …
  const BUCKETS = 30; // … over 5 minutes
  const TOKEN_KEY = 'pgqueue.token';

  const $ = (id) => document.getElementById(id);
  const app = $('app');

  // h('a', {href: '#/', class: 'x', dataset: {...}, onclick: fn}, 'text', node, [more])
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const k in attrs) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'onclick') el._click = v; // delegated, see below: survives morphing
        else if (k === 'text') el.textContent = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    add(el, kids);
    return el;
  }
  function add(el, kids) {
    for (const c of kids) {
      if (c == null || c === false) continue;
      if (Array.isArray(c)) add(el, c);
      else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  document.addEventListener('click', (e) => {
    for (let n = e.target; n && n !== document; n = n.parentNode) if (n._click) { n._click(e, n); return; }
  });
  // Makes the live element `old` look like `nu` while keeping every element that stays the same
  // kind in place, so that references to them (a WebDriver test's, the focus, a text selection)
  // survive a refresh. Elements with another data-testid or data-task-id are replaced.
  function morph(old, nu) {
    if (old.nodeType !== nu.nodeType || old.nodeName !== nu.nodeName || (old.nodeType === 1 &&
        (old.getAttribute('data-testid') !== nu.getAttribute('data-testid') || old.getAttribute('data-task-id') !== nu.getAttribute('data-task-id')))) {
      old.replaceWith(nu);
      return;
    }
    if (old.nodeType !== 1) { if (old.nodeValue !== nu.nodeValue) old.nodeValue = nu.nodeValue; return; }
    for (const a of [...old.attributes]) if (!nu.hasAttribute(a.name)) old.removeAttribute(a.name);
    for (const a of nu.attributes) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
    old._click = nu._click;
    morphKids(old, nu);
  }
  function morphKids(old, nu) {
    const o = [...old.childNodes], n = [...nu.childNodes];
    n.forEach((c, i) => (i < o.length ? morph(o[i], c) : old.appendChild(c)));
    for (let i = n.length; i < o.length; i++) o[i].remove();
  }
  const SVGNS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs) {
    const el = document.createElementNS(SVGNS, tag);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    return el;
  }
  const enc = encodeURIComponent;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---------------------------------------------------------------- time and durations
  let skew = 0; // server clock minus browser clock, from the Date header, when it is off by > 2 s
  const now = () => Date.now() + skew;

  function dur(ns) {
    if (ns == null) return '—';
    ns = Number(ns);
    if (ns === 0) return '0s';
    if (ns < 1e3) return ns + 'ns';
    if (ns < 1e6) return +(ns / 1e3).toFixed(1) + 'µs';
    if (ns < 1e9) return +(ns / 1e6).toFixed(1) + 'ms';
    let ms = Math.round(ns / 1e6);
    const parts = [];
    for (const [u, n] of [['d', 864e5], ['h', 36e5], ['m', 6e4]]) {
      if (ms >= n) { parts.push(Math.floor(ms / n) + u); ms %= n; }
    }
    if (ms) parts.push(+(ms / 1000).toFixed(3) + 's');
    return parts.join('');
  }
  function span(ms) { // short human length of a time span
    ms = Math.abs(ms);
    if (ms < 1000) return Math.round(ms) + ' ms';
    const sec = ms / 1000;
    if (sec < 60) return Math.floor(sec) + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min';
    if (sec < 86400) { const hr = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60); return hr + ' h' + (m && hr < 10 ? ' ' + m + ' min' : ''); }
    return Math.floor(sec / 86400) + ' d';
  }
  function rel(ts) {
    const d = Date.parse(ts) - now();
    if (Math.abs(d) < 5000) return 'just now';
    return d < 0 ? span(d) + ' ago' : 'in ' + span(d);
  }
  function exact(ts) {
    const d = new Date(ts);
    return ts + '  (' + d.toLocaleString() + ')';
  }
  // A relative time with the exact time as tooltip; refreshed every few seconds.
  function when(ts) {
    if (!ts) return h('span', { class: 'muted' }, '—');
    return h('time', { datetime: ts, title: exact(ts), dataset: { ts: ts } }, rel(ts));
  }
  function age(ts) {
    if (!ts) return h('span', { class: 'muted' }, '—');
    return h('time', { datetime: ts, title: 'since ' + exact(ts), dataset: { age: ts } }, span(now() - Date.parse(ts)));
  }
  setInterval(() => {
    for (const el of document.querySelectorAll('[data-ts]')) el.textContent = rel(el.dataset.ts);
    for (const el of document.querySelectorAll('[data-age]')) el.textContent = span(now() - Date.parse(el.dataset.age));
  }, 5000);
  function clock(ts) {
    const d = new Date(ts);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false });
  }

  function preview(v, n) {
    let t = v === undefined ? '' : JSON.stringify(v);
    n = n || 80;
    return t.length > n ? t.slice(0, n - 1) + '…' : t;
  }
  function badge(status, testid) {
    return h('span', { class: 'badge st-' + status, 'data-testid': testid }, status);
  }

  // ---------------------------------------------------------------- banner, notices
  let errSource = null;
  function showError(msg, source) {
    $('error').textContent = msg;
    $('errbar').hidden = false;
    errSource = source || 'action';
  }
  function clearError(source) {
    if (source && errSource !== source) return;
    $('errbar').hidden = true;
    $('error').textContent = '';
    errSource = null;
  }
  $('errclose').addEventListener('click', () => clearError());
  let noticeTimer;
  function notice(msg) {
    const n = $('notice');
    n.textContent = msg;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
  }

  // ---------------------------------------------------------------- API access and auth
  const getToken = () => sessionStorage.getItem(TOKEN_KEY);
  function authHeaders() {
    const t = getToken();
    return t ? { Authorization: 'Bearer ' + t } : {};
  }
  class ApiError extends Error {
    constructor(status, reason) { super(reason); this.status = status; }
  }
  function noteDate(res) {
    const d = Date.parse(res.headers.get('Date') || '');
    if (isNaN(d)) return;
    const off = d + 500 - Date.now();
    skew = Math.abs(off) > 2000 ? off : 0;
  }
  async function api(method, path, query, body) {
    let url = API + path;
    if (query) {
      const q = new URLSearchParams();
      for (const k in query) {
        const v = query[k];
        if (v == null) continue;
        for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
      }
      const qs = q.toString();
      if (qs) url += '?' + qs;
    }
    const headers = authHeaders();
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    let res;
    try { res = await fetch(url, init); } catch (e) {
      throw new ApiError(0, 'cannot reach the server (' + (e.message || e) + ')');
    }
    noteDate(res);
    const text = await res.text();
    if (res.status === 401) { needAuth(text); throw new ApiError(401, 'a token is required'); }
    const ct = res.headers.get('Content-Type') || '';
    let data = text;
    if (ct.includes('json') && text) {
      try { data = JSON.parse(text); } catch (e) { /* keep text */ }
    }
    if (!res.ok) {
      const reason = data && typeof data === 'object' && data.reason ? data.reason : res.status + ' ' + (res.statusText || 'error');
      throw new ApiError(res.status, reason);
    }
    return data;
  }
  async function listAll(path, query, max) { // pages through a list (queues, tickers), up to max
    const out = [];
    max = max || 1000;
    for (let off = 0; off < max; off += 100) {
      const r = await api('GET', path, Object.assign({}, query, { offset: off, limit: 100 }));
      const b = r.body || [];
      out.push(...b);
      if (b.length < 100 || out.length >= r.count) break;
    }
    return out;
  }

  async function pool(items, fn, n) { // runs fn over items, n at a time, results in order
    const out = [];
    let i = 0;
    await Promise.all(Array.from({ length: Math.min(n || 6, items.length) }, async () => {
      while (i < items.length) { const k = i++; out[k] = await fn(items[k]); }
    }));
    return out;
  }

  let authNeeded = false;
  function needAuth(text) {
    let reason = '';
    try { reason = JSON.parse(text).reason || ''; } catch (e) { /* none */ }
    stopStream();
    if (authNeeded) return;
    authNeeded = true;
    clearError();
    const input = h('input', { type: 'password', 'data-testid': 'token-input', placeholder: 'pgq_…', autocomplete: 'off', spellcheck: 'false', required: true });
    const form = h('form', { class: 'card login' },
      h('h2', null, 'Sign in'),
      h('p', { class: 'muted' }, getToken() ? 'The server refused the token' + (reason ? ': ' + reason : '') + '.' : 'This server requires an API token (pgqueue token create).'),
      h('label', null, 'Token', input),
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'token-submit' }, 'Sign in'),
      h('p', { class: 'muted small' }, 'The token is kept in this tab only (sessionStorage).'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      authNeeded = false;
      updateSignout();
      startStream();
      route();
    });
    app.replaceChildren(form);
    input.focus();
  }
  function updateSignout() { $('signout').hidden = !getToken(); }
  $('signout').addEventListener('click', (e) => {
    e.preventDefault();
    sessionStorage.removeItem(TOKEN_KEY);
    updateSignout();
    stopStream();
    authNeeded = false;
    startStream();
    route();
  });

  // ---------------------------------------------------------------- metrics
  function parseMetrics(text) {
    const out = [];
    for (const line of String(text).split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2] || ''))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }
  // { counts: {queue: {status: n}}, totals: {queue: {released, failed}} }
  async function fetchCounts(queues) {
    let samples = null;
    try { samples = parseMetrics(await api('GET', '/metrics')); } catch (e) { if (e.status === 401) throw e; }
    const counts = {}, totals = {};
    if (samples) {
      for (const x of samples) {
        const q = x.labels.queue;
        if (x.name === 'queue_tasks' && q) (counts[q] = counts[q] || {})[x.labels.status] = x.value;
        else if ((x.name === 'pgqueue_tasks_released_total' || x.name === 'pgqueue_tasks_failed_total') && q) {
          const t = (totals[q] = totals[q] || { released: 0, failed: 0 });
          t[x.name === 'pgqueue_tasks_released_total' ? 'released' : 'failed'] += x.value;
        }
      }
    }
    if (!samples || Object.keys(counts).length === 0 && queues.length) {
      // No metrics: one count-only request per queue and status.
      await pool(queues.flatMap((q) => STATUSES.map((st) => [q, st])), async ([q, st]) => {
        const r = await api('GET', '/task', { queue: q, status: st, limit: 0 });
        (counts[q] = counts[q] || {})[st] = r.count;
      });
      return { counts, totals: null };
    }
    return { counts, totals };
  }

  // ---------------------------------------------------------------- throughput
  const tput = new Map(); // queue -> Map(bucket -> {done, failed})
  function tputAdd(queue, kind, n) {
    if (!n) return;
    const b = Math.floor(Date.now() / BUCKET_MS);
    let m = tput.get(queue);
    if (!m) tput.set(queue, (m = new Map()));
    const c = m.get(b) || { done: 0, failed: 0 };
    c[kind] += n;
    m.set(b, c);
    for (const k of m.keys()) if (k <= b - BUCKETS) m.delete(k);
  }
  function tputSeries(queue) { // [{done, failed}] oldest first; queue null = all queues
    const b = Math.floor(Date.now() / BUCKET_MS);
    const out = [];
    for (let i = b - BUCKETS + 1; i <= b; i++) out.push({ done: 0, failed: 0 });
    const maps = queue == null ? [...tput.values()] : [tput.get(queue)].filter(Boolean);
    for (const m of maps) {
      for (const [k, c] of m) {
        const i = k - (b - BUCKETS + 1);
        if (i >= 0 && i < BUCKETS) { out[i].done += c.done; out[i].failed += c.failed; }
      }
    }
    return out;
  }
  function perMinute(series) { // over the last minute (6 buckets)
    let d = 0;
    for (const c of series.slice(-6)) d += c.done;
    return d;
  }
  let lastTotals = null;
  function tputFromMetrics(totals) { // fallback while the event stream is not live
    if (!totals) return;
    if (lastTotals && liveState !== 'live') {
      for (const q in totals) {
        const p = lastTotals[q] || { released: 0, failed: 0 };
        tputAdd(q, 'done', Math.max(0, totals[q].released - p.released));
        tputAdd(q, 'failed', Math.max(0, totals[q].failed - p.failed));
      }
    }
    lastTotals = totals;
  }
  function sparkline(series, w, ht) {
    w = w || 120; ht = ht || 26;
    const max = Math.max(1, ...series.map((c) => Math.max(c.done, c.failed)));
    const pts = (key) => series.map((c, i) => (i * (w / (series.length - 1))).toFixed(1) + ',' + (ht - 2 - (c[key] / max) * (ht - 4)).toFixed(1)).join(' ');
    const svg = s('svg', { class: 'spark', width: w, height: ht, viewBox: '0 0 ' + w + ' ' + ht, role: 'img' });
    const title = s('title', {});
    const done = series.reduce((a, c) => a + c.done, 0), failed = series.reduce((a, c) => a + c.failed, 0);
    title.textContent = 'last 5 min, per 10 s: ' + done + ' released, ' + failed + ' failures (max ' + max + '/10 s)';
    svg.appendChild(title);
    const area = s('polygon', { class: 'sp-area', points: '0,' + ht + ' ' + pts('done') + ' ' + w + ',' + ht });
    if (!done && !failed) { svg.appendChild(s('polyline', { class: 'sp-idle', points: pts('done') })); return svg; }
    svg.appendChild(area);
    svg.appendChild(s('polyline', { class: 'sp-done', points: pts('done') }));
    if (failed) svg.appendChild(s('polyline', { class: 'sp-fail', points: pts('failed') }));
    return svg;
  }

  // ---------------------------------------------------------------- live feed (SSE over fetch)
  const feedEl = h('div', { class: 'feed', 'data-testid': 'live-feed' });
  const feedEmpty = h('div', { class: 'feed-empty muted' }, 'no events yet');
  feedEl.appendChild(feedEmpty);
  let feedCount = 0;
  function feedAdd(kind, ev) {
    feedEmpty.remove();
    let row;
    if (kind === 'task') {
      row = h('div', { class: 'ev', 'data-testid': 'event', dataset: { taskId: ev.id, event: ev.event } },
        h('time', { title: ev.at ? exact(ev.at) : '' }, clock(ev.at || new Date().toISOString())),
        h('span', { class: 'badge ev-' + ev.event }, ev.event),
        h('a', { href: '#/task/' + enc(ev.id), class: 'mono' }, '#' + ev.id),
        h('a', { href: '#/queue/' + enc(ev.queue) }, ev.queue),
        ev.status ? badge(ev.status) : h('span'));
    } else {
      row = h('div', { class: 'ev ev-q', 'data-testid': 'queue-event', dataset: { event: ev.event, queue: ev.queue } },
        h('time', { title: ev.at ? exact(ev.at) : '' }, clock(ev.at || new Date().toISOString())),
        h('span', { class: 'badge ev-' + ev.event }, ev.event),
        h('span', { class: 'muted' }, 'queue'),
        h('a', { href: '#/queue/' + enc(ev.queue) }, ev.queue),
        h('span'));
    }
    feedEl.prepend(row);
    if (++feedCount > FEED_MAX) { feedEl.lastElementChild.remove(); feedCount--; }
  }
  function feedNote(text) {
    feedEmpty.remove();
    feedEl.prepend(h('div', { class: 'ev ev-note muted' }, text));
    if (++feedCount > FEED_MAX) { feedEl.lastElementChild.remove(); feedCount--; }
  }

  let liveState = 'connecting', liveText = 'connecting…';
  function setLive(state, text) {
    liveState = state;
    liveText = text || state;
    const el = $('live');
    el.className = 'live live-' + state;
    el.textContent = text || state;
    for (const x of document.querySelectorAll('[data-live-status]')) x.textContent = text || state;
  }

  let streamCtrl = null, streamGen = 0, lastEventId = null;
  function stopStream() {
    streamGen++;
    if (streamCtrl) streamCtrl.abort();
    streamCtrl = null;
  }
  function startStream() {
    stopStream();
    streamLoop(streamGen);
  }
  // One connection at a time; reconnects with backoff and Last-Event-ID; a missing route
  // (404 until the server has it) is retried every 30 s.
  async function streamLoop(gen) {
    let attempt = 0;
    const backoff = () => Math.min(30000, 1000 * 2 ** attempt++);
    while (gen === streamGen) {
      const ctrl = (streamCtrl = new AbortController());
      const headers = Object.assign({ Accept: 'text/event-stream' }, authHeaders());
      if (lastEventId != null) headers['Last-Event-ID'] = lastEventId;
      let wait;
      try {
        const res = await fetch(API + '/events', { headers, signal: ctrl.signal, cache: 'no-store' });
        if (gen !== streamGen) { ctrl.abort(); return; }
        const ct = res.headers.get('Content-Type') || '';
        if (res.status === 401) { setLive('signed-out', 'signed out'); needAuth(await res.text()); return; }
        if (res.ok && ct.includes('text/event-stream') && res.body) {
          setLive('live');
          await readStream(res.body, ctrl, () => { attempt = 0; });
          if (gen !== streamGen) return;
          setLive('reconnecting', 'reconnecting…');
          wait = backoff();
        } else {
          if (res.status === 404 || res.status === 405 || res.status === 501 || res.ok) {
            setLive('unavailable', 'live feed unavailable');
            wait = 30000;
          } else {
            if (res.status === 400) lastEventId = null; // e.g. a Last-Event-ID it does not take: start afresh
            setLive('reconnecting', 'live feed: error ' + res.status);
            wait = backoff();
          }
          res.body && res.body.cancel().catch(() => {});
        }
      } catch (e) {
        if (gen !== streamGen) return;
        setLive('reconnecting', 'reconnecting…');
        wait = backoff();
      }
      await sleep(wait + Math.random() * 500);
    }
  }
  // Server-sent events parser over a ReadableStream (https://html.spec.whatwg.org/#event-stream-interpretation).
  async function readStream(body, ctrl, onData) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = '', type = '', data = [], id = null, first = true;
    let watchdog;
    const arm = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctrl.abort(), 35000); };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        if (first) { first = false; onData(); }
        buf += dec.decode(value, { stream: true });
        if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1);
        for (;;) {
          const m = /\r\n|\r|\n/.exec(buf);
          if (!m || (m[0] === '\r' && m.index === buf.length - 1)) break;
          const line = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          if (line === '') {
            if (id != null) lastEventId = id;
            if (type || data.length) onFrame(type || 'message', data.join('\n'));
            type = ''; data = []; id = null;
            continue;
          }
          if (line[0] === ':') continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let val = c < 0 ? '' : line.slice(c + 1);
          if (val[0] === ' ') val = val.slice(1);
          if (field === 'event') type = val;
          else if (field === 'data') data.push(val);
          else if (field === 'id' && !val.includes('\0')) id = val;
        }
      }
    } catch (e) { /* aborted or broken: reconnect */ } finally {
      clearTimeout(watchdog);
    }
  }
  function onFrame(type, data) {
    if (type === 'ping') return;
    if (type === 'reset') {
      feedNote('some events were missed while disconnected; data refreshed');
      if (current) current.refresh();
      return;
    }
    let ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    if (!ev || typeof ev !== 'object') return;
    if (type === 'task') {
      feedAdd('task', ev);
      if (ev.event === 'released') tputAdd(ev.queue, 'done', 1);
      else if (ev.event === 'failed' || ev.event === 'retry') tputAdd(ev.queue, 'failed', 1);
    } else if (type === 'queue') {
      feedAdd('queue', ev);
    } else return;
    if (current && current.onEvent) current.onEvent(type, ev);
  }

  // ---------------------------------------------------------------- page plumbing
  let current = null, routeGen = 0;
  // A page: load(gen) fetches and renders; refresh() reloads unless busy; events call onEvent.
  function makePage(load, opts) {
    const page = { gen: routeGen, busy: false, key: null };
    // Reloads; a call while a load runs makes it run once more afterwards (so an action's
    // refresh is never lost behind a periodic one that read the state before the action).
    page.refresh = async () => {
      if (page.gen !== routeGen) return;
      if (page.busy) { page.again = true; return; }
      if (authNeeded) return;
      page.busy = true;
      try {
        do {
          page.again = false;
          await load(page);
          clearError('refresh');
        } while (page.again && page.gen === routeGen && !authNeeded);
      } catch (e) {
        if (e.status !== 401 && page.gen === routeGen) showError(e.message, 'refresh');
      } finally { page.busy = false; }
    };
    // re-render only when what the page shows has changed (keeps text selections alive)
    page.render = (data, build) => {
      if (page.gen !== routeGen || authNeeded) return false;
      const key = JSON.stringify(data);
      if (key === page.key) return false;
      page.key = key;
      morphKids(app, add(h('div'), [build()]));
      return true;
    };
    page.soon = throttle(() => page.refresh(), 1000);
    Object.assign(page, opts || {});
    return page;
  }
  function throttle(fn, ms) {
    let last = 0, timer = null;
    return () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, Math.max(0, last + ms - Date.now()));
    };
  }
  // Runs an action from a button: disabled while running, errors to the banner, then refresh.
  function act(fn) {
    return async (e, btn) => {
      if (btn.disabled) return;
      btn.disabled = true;
      const page = current;
      try {
        const msg = await fn();
        clearError();
        if (msg) notice(msg);
      } catch (e) {
        if (e.status !== 401) showError(e.message);
      } finally {
        btn.disabled = false;
      }
      if (page && page === current) await page.refresh();
    };
  }
  function button(label, testid, fn, cls, title) {
    return h('button', { type: 'button', 'data-testid': testid, class: cls || '', title: title || null, onclick: act(fn) }, label);
  }
  function setNav(which) {
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === which);
  }
  function pager(count, offset, limit, hrefFor) {
    const last = Math.max(0, Math.floor((count - 1) / limit) * limit);
    const link = (label, off, on, tid) => on
      ? h('a', { class: 'btn', href: hrefFor(off), 'data-testid': tid }, label)
      : h('span', { class: 'btn disabled', 'data-testid': tid }, label);
    return h('div', { class: 'pager' },
      h('span', { class: 'muted', 'data-testid': 'page-info' }, count ? (offset + 1) + '–' + Math.min(count, offset + limit) + ' of ' + count : 'none'),
      link('« first', 0, offset > 0, 'page-first'),
      link('‹ prev', Math.max(0, offset - limit), offset > 0, 'page-prev'),
      link('next ›', offset + limit, offset + limit < count, 'page-next'),
      link('last »', last, offset < last, 'page-last'));
  }
  function kv(rows) {
    return h('dl', { class: 'kv' }, rows.filter(Boolean).map(([k, v, tid]) => [h('dt', null, k), h('dd', { 'data-testid': tid || null }, v)]));
  }
  function jsonBlock(v, testid) {
    return h('pre', { class: 'json', 'data-testid': testid }, v === undefined ? '' : JSON.stringify(v, null, 2));
  }
  function tasksTable(tasks, withQueue, extra) {
    return h('table', { class: 'grid tasks' },
      h('thead', null, h('tr', null, h('th', { class: 'num' }, 'id'), withQueue && h('th', null, 'queue'), h('th', null, 'status'),
        h('th', null, 'payload'), h('th', null, 'result / error'), h('th', { class: 'num' }, 'attempts left'), h('th', null, 'worker'),
        h('th', null, 'created'), h('th', null, 'activity'), extra && h('th'))),
      h('tbody', null, tasks.length ? tasks.map((t) => h('tr', { 'data-testid': 'task-row', dataset: { taskId: t.id, status: t.status } },
        h('td', { class: 'num' }, h('a', { href: '#/task/' + t.id, class: 'mono' }, '#' + t.id)),
        withQueue && h('td', null, h('a', { href: '#/queue/' + enc(t.queue) }, t.queue)),
        h('td', null, badge(t.status), t.cancel_requested_at ? h('span', { class: 'muted small', title: 'cancel requested ' + exact(t.cancel_requested_at) }, ' ⊘') : null),
        h('td', { class: 'mono clip', title: preview(t.payload, 400) }, preview(t.payload, 60)),
        h('td', { class: 'mono clip', title: t.result === undefined ? '' : preview(t.result, 400) }, t.result === undefined ? '' : preview(t.result, 40)),
        h('td', { class: 'num' }, t.retries),
        h('td', { class: 'mono' }, t.worker || ''),
        h('td', null, when(t.created_at)),
        h('td', null, activity(t)),
        extra && h('td', { class: 'row-actions' }, extra(t)))) : h('tr', null, h('td', { colspan: 11, class: 'muted empty' }, 'no tasks'))));
  }
  function activity(t) { // the most telling time of a task, with what it means
    if (t.finished_at) return h('span', null, h('span', { class: 'muted' }, 'ended '), when(t.finished_at));
    if (t.status === 'retained' && t.started_at) return h('span', null, h('span', { class: 'muted' }, 'started '), when(t.started_at));
    if (t.status === 'expired') return h('span', null, h('span', { class: 'muted' }, 'expired '), when(t.dies_at));
    if (t.delayed_at && Date.parse(t.delayed_at) > now()) return h('span', null, h('span', { class: 'muted' }, 'due '), when(t.delayed_at));
    return h('span', { class: 'muted' }, 'waiting');
  }
  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const query = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
    return { path: path.replace(/\/+$/, '') || '/', query };
  }
  const intParam = (q, k) => Math.max(0, parseInt(q.get(k), 10) || 0);

  // ---------------------------------------------------------------- overview
  function overviewPage() {
    setNav('overview');
    const oldest = new Map(); // queue -> created_at of its first new task
    let full = 0;
    const body = h('div', { class: 'overview-main' });
    const wrap = [h('div', { class: 'page-head' }, h('h1', null, 'Queues'), h('span', { class: 'muted', 'data-testid': 'summary' })), body,
      h('section', { class: 'card feed-card' },
        h('div', { class: 'card-head' }, h('h2', null, 'Live feed'), h('span', { class: 'muted small', 'data-live-status': '' })),
        h('div', { class: 'ev ev-head muted small' }, h('span', null, 'time'), h('span', null, 'event'), h('span', null, 'task'), h('span', null, 'queue'), h('span', null, 'status')),
        feedEl)];
    let mounted = false;
    async function load(page) {
      const queues = await listAll('/queue');
      const names = queues.map((q) => q.queue);
      const { counts, totals } = await fetchCounts(names);
      tputFromMetrics(totals);
      if (Date.now() - full > 4500) { // oldest waiting: one request per queue with new tasks
        full = Date.now();
        await pool(names, async (n) => {
          if (!(counts[n] && counts[n].new)) { oldest.delete(n); return; }
          const r = await api('GET', '/task', { queue: n, status: 'new', limit: 1 });
          if (r.body && r.body[0]) oldest.set(n, r.body[0].created_at); else oldest.delete(n);
        });
      }
      if (page.gen !== routeGen || authNeeded) return;
      if (!mounted) { app.replaceChildren(...wrap); mounted = true; }
      wrap[2].querySelector('[data-live-status]').textContent = liveText;
      const tot = {};
      for (const st of STATUSES) tot[st] = names.reduce((a, n) => a + ((counts[n] || {})[st] || 0), 0);
      wrap[0].lastChild.textContent = queues.length + (queues.length === 1 ? ' queue' : ' queues') + ' · ' + (tot.new + tot.retry) + ' waiting · ' + tot.retained + ' running · ' + tot.failed + ' failed';
      const all = tputSeries(null);
      morphKids(body, h('div', null,
        queues.length ? h('table', { class: 'grid queues', 'data-testid': 'queues' },
          h('thead', null, h('tr', null, h('th', null, 'queue'), h('th', null, 'state'),
            STATUSES.map((st) => h('th', { class: 'num' }, badge(st))),
            h('th', null, 'oldest waiting'), h('th', { class: 'num', title: 'released in the last minute' }, 'done/min'), h('th', null, 'last 5 min'))),
          h('tbody', null, queues.map((q) => {
            const c = counts[q.queue] || {};
            const ser = tputSeries(q.queue);
            return h('tr', { 'data-testid': 'queue-row-' + q.queue, class: q.paused_at ? 'paused' : '' },
              h('td', { class: 'name' }, h('a', { href: '#/queue/' + enc(q.queue), 'data-testid': 'queue-link' }, q.queue)),
              h('td', null, q.paused_at ? h('span', { class: 'pill paused', title: 'paused ' + exact(q.paused_at) }, 'paused') : h('span', { class: 'pill active' }, 'active')),
              STATUSES.map((st) => h('td', { class: 'num count' + (c[st] ? ' nz st-' + st : ' zero'), 'data-status': st },
                h('a', { href: '#/queue/' + enc(q.queue) + '?status=' + st, title: st + ' tasks of ' + q.queue }, String(c[st] || 0)))),
              h('td', null, age(oldest.get(q.queue))),
              h('td', { class: 'num', 'data-testid': 'throughput' }, String(perMinute(ser))),
              h('td', null, sparkline(ser)));
          })),
          h('tfoot', null, h('tr', null, h('td', null, 'all'), h('td'), STATUSES.map((st) => h('td', { class: 'num' }, String(tot[st]))),
            h('td'), h('td', { class: 'num' }, String(perMinute(all))), h('td', null, sparkline(all)))))
          : h('div', { class: 'card empty' }, h('p', null, 'No queues yet.'), h('p', { class: 'muted' }, 'Create one: curl -X POST ' + location.origin + API + '/queue -d \'{"queue":"emails"}\''))));
    }
    return makePage(load, {
      onEvent(type) { if (type === 'task' || type === 'queue') this.soon(); },
    });
  }

  // ---------------------------------------------------------------- queue page
  function queuePage(name, q) {
    setNav('');
    const status = STATUSES.includes(q.get('status')) ? q.get('status') : '';
    const offset = intParam(q, 'offset');
    const href = (st, off) => '#/queue/' + enc(name) + '?' + (st ? 'status=' + st + '&' : '') + 'offset=' + (off || 0);
    async function load(page) {
      let queue, list, cnt;
      try {
        [queue, list, cnt] = await Promise.all([
          api('GET', '/queue/' + enc(name)),
          api('GET', '/task', { queue: name, status: status || null, offset, limit: PAGE }),
          fetchCounts([name]),
        ]);
      } catch (e) {
        if (e.status !== 404) throw e;
        if (page.render({ missing: name }, () => h('div', { class: 'card' }, h('h1', null, 'queue ' + name), h('p', null, e.message), h('a', { href: '#/' }, '← overview')))) showError(e.message);
        return;
      }
      const tasks = list.body || [];
      if (!tasks.length && offset > 0 && list.count > 0) { // past the end (after a purge): go to the last page
        location.replace(href(status, Math.floor((list.count - 1) / PAGE) * PAGE));
        return;
      }
      tputFromMetrics(cnt.totals);
      const counts = cnt.counts[name] || {};
      page.render({ queue, list, counts }, () => {
        const paused = !!queue.paused_at;
        const purgeSt = status ? [status] : STATUSES.filter((x) => x !== 'retained');
        const rate = queue.rate ? queue.rate.per_second + '/s, burst ' + (queue.rate.burst || 1) : 'unlimited';
        return [
          h('div', { class: 'page-head' },
            h('h1', null, h('span', { class: 'muted' }, 'queue '), queue.queue),
            h('span', { class: 'pill ' + (paused ? 'paused' : 'active'), 'data-testid': 'queue-paused', title: paused ? 'paused ' + exact(queue.paused_at) : 'tasks are handed out' }, paused ? 'paused' : 'active'),
            h('span', { class: 'spacer' }),
            paused
              ? button('Resume', 'resume-queue', async () => { await api('POST', '/queue/' + enc(name) + '/resume'); return 'queue ' + name + ' resumed'; }, 'primary')
              : button('Pause', 'pause-queue', async () => { await api('POST', '/queue/' + enc(name) + '/pause'); return 'queue ' + name + ' paused'; }),
            button('↻ Retry failed', 'retry-failed', async () => {
              const r = await api('POST', '/queue/' + enc(name) + '/retry');
              return r.count + ' failed task' + (r.count === 1 ? '' : 's') + ' retried';
            }, '', 'make every failed task of the queue new again'),
            button('Purge ' + (status || 'all but retained'), 'purge', async () => {
              if (!confirm('Delete every ' + purgeSt.join(', ') + ' task of queue ' + name + '? This cannot be undone.')) return null;
              const r = await api('DELETE', '/task', { queue: name, status: purgeSt });
              return r.count + ' task' + (r.count === 1 ? '' : 's') + ' deleted';
            }, 'danger', status === 'retained' ? 'retained tasks cannot be purged: cancel them' : 'delete the ' + purgeSt.join(', ') + ' tasks')),
          h('section', { class: 'card stats', 'data-testid': 'queue-settings' }, [
            ['ttl', dur(queue.ttl)], ['retries', String(queue.retries)], ['retry delay', dur(queue.retry_delay)],
            ['lease', dur(queue.lease)], ['max running', queue.max_running == null ? 'unlimited' : String(queue.max_running)],
            ['rate', rate], paused && ['paused', when(queue.paused_at)],
          ].filter(Boolean).map(([k, v]) => h('div', { 'data-setting': k }, h('span', null, k), h('b', null, v)))),
          h('nav', { class: 'tabs' },
            h('a', { href: href('', 0), class: status ? '' : 'active', 'data-testid': 'tab-all' }, 'all ', h('span', { class: 'muted' }, String(STATUSES.reduce((a, x) => a + (counts[x] || 0), 0)))),
            STATUSES.map((st) => h('a', { href: href(st, 0), class: (status === st ? 'active ' : '') + 'st-' + st, 'data-testid': 'tab-' + st, 'data-status': st },
              st + ' ', h('span', { class: 'cnt' }, String(counts[st] || 0))))),
          tasksTable(tasks, false),
          pager(list.count, offset, PAGE, (off) => href(status, off)),
        ];
      });
    }
    return makePage(load, {
      onEvent(type, ev) { if (ev.queue === name) this.soon(); },
    });
  }

  // ---------------------------------------------------------------- task page
  function taskPage(id) {
    setNav('');
    let deleted = null;
    async function load(page) {
      let t;
      if (deleted) t = deleted;
      else {
        try { t = await api('GET', '/task/' + id); } catch (e) {
          if (e.status !== 404) throw e;
          if (page.render({ missing: id }, () => [h('div', { class: 'page-head' }, h('h1', null, 'task #' + id), badge('not found', 'task-status')),
            h('div', { class: 'card' }, h('p', null, e.message), h('p', null, h('a', { href: '#/' }, '← overview')))])) showError(e.message);
          return;
        }
      }
      page.render({ t, deleted: !!deleted }, () => {
        const st = deleted ? 'deleted' : t.status;
        const ended = ['released', 'failed', 'cancelled', 'expired'].includes(t.status);
        const isErr = ['failed', 'retry', 'cancelled'].includes(t.status) || (t.status === 'expired' && t.result !== undefined);
        return [
          h('div', { class: 'page-head' },
            h('h1', null, h('span', { class: 'muted' }, 'task '), '#' + t.id),
            h('span', { class: 'badge big st-' + st, 'data-testid': 'task-status' }, st),
            t.cancel_requested_at && !ended ? h('span', { class: 'pill paused', title: exact(t.cancel_requested_at) }, 'cancel requested') : null,
            h('span', { class: 'spacer' }),
            deleted ? null : [
              button('⊘ Cancel', 'cancel-task', async () => {
                const r = await api('POST', '/task/' + id + '/cancel');
                return r.status === 'retained' ? 'cancel requested: the worker is told at its next heartbeat' : 'task cancelled';
              }, ended ? 'dim' : '', ended ? 'the task has ended' : 'cancel the task'),
              button('↻ Retry', 'retry-task', async () => { await api('POST', '/task/' + id + '/retry'); return 'task is new again'; },
                ['failed', 'expired', 'cancelled'].includes(t.status) ? 'primary' : 'dim', 'only failed, expired or cancelled tasks are retried'),
              button('Delete', 'delete-task', async () => {
                if (!confirm('Delete task #' + id + '? This cannot be undone.')) return null;
                deleted = await api('DELETE', '/task/' + id);
                return 'task #' + id + ' deleted';
              }, t.status === 'retained' ? 'dim' : 'danger', t.status === 'retained' ? 'a retained task must be cancelled first' : 'delete the task'),
            ]),
          h('div', { class: 'cols' },
            h('section', { class: 'card' }, kv([
              ['queue', h('a', { href: '#/queue/' + enc(t.queue), 'data-testid': 'task-queue' }, t.queue)],
              ['attempts left', String(t.retries), 'task-retries'],
              ['priority', String(t.priority || 0)],
              t.unique_key != null && ['unique key', h('span', { class: 'mono' }, t.unique_key)],
              [t.status === 'retained' ? 'worker' : 'last worker', t.worker ? h('span', { class: 'mono' }, t.worker) : h('span', { class: 'muted' }, '—'), 'task-worker'],
              ['lease expires', t.status === 'retained' ? when(t.lease_expires_at) : h('span', { class: 'muted' }, t.lease_expires_at ? 'ended' : '—')],
            ])),
            h('section', { class: 'card' }, kv([
              ['created', when(t.created_at)],
              t.delayed_at && ['delayed until', when(t.delayed_at)],
              ['started', when(t.started_at)],
              ['finished', when(t.finished_at)],
              ['dies', when(t.dies_at)],
              t.cancel_requested_at && ['cancel requested', when(t.cancel_requested_at)],
            ]))),
          h('section', { class: 'card' }, h('h2', null, 'Payload'), jsonBlock(t.payload, 'task-payload')),
          t.result !== undefined ? h('section', { class: 'card' + (isErr ? ' err' : '') }, h('h2', null, isErr ? 'Error' : 'Result'), jsonBlock(t.result, 'task-result')) : null,
        ];
      });
    }
    return makePage(load, {
      onEvent(type, ev) { if (type === 'task' && String(ev.id) === String(id) && !deleted) this.soon(); },
    });
  }

  // ---------------------------------------------------------------- tickers
  function tickersPage(q) {
    setNav('tickers');
    const offset = intParam(q, 'offset');
    async function load(page) {
      const list = await api('GET', '/ticker', { offset, limit: 100 });
      const tickers = list.body || [];
      const sched = await pool(tickers, (t) => api('GET', '/ticker/' + enc(t.ticker) + '/schedule', { n: 3 }).then((r) => r.body || [], () => []));
      page.render({ tickers, sched }, () => [
        h('div', { class: 'page-head' }, h('h1', null, 'Tickers'), h('span', { class: 'muted' }, list.count + (list.count === 1 ? ' ticker' : ' tickers'))),
        tickers.length ? h('table', { class: 'grid tickers' },
          h('thead', null, h('tr', null, ['ticker', 'schedule', 'target', 'payload', 'last fired', 'next maturities', 'state', ''].map((x) => h('th', null, x)))),
          h('tbody', null, tickers.map((t, i) => h('tr', { 'data-testid': 'ticker-row-' + t.ticker, class: t.paused_at ? 'paused' : '' },
            h('td', { class: 'name' }, t.ticker),
            h('td', { class: 'mono' }, t.cron ? t.cron + (t.timezone && t.timezone !== 'UTC' ? ' (' + t.timezone + ')' : '') : 'every ' + dur(t.interval)),
            h('td', null, t.queue ? h('a', { href: '#/queue/' + enc(t.queue) }, t.queue) : h('span', { class: 'muted', title: 'delivered to ticker subscribers (SSE)' }, 'stream')),
            h('td', { class: 'mono clip', title: preview(t.payload, 400) }, preview(t.payload, 40)),
            h('td', null, when(t.timestamp)),
            h('td', { class: 'next' }, t.paused_at ? h('span', { class: 'muted' }, 'paused') : (sched[i].length ? sched[i] : [t.next_at].filter(Boolean)).map((ts) => h('div', null, when(ts)))),
            h('td', null, t.paused_at ? h('span', { class: 'pill paused', 'data-testid': 'ticker-paused', title: exact(t.paused_at) }, 'paused') : h('span', { class: 'pill active', 'data-testid': 'ticker-paused' }, 'active')),
            h('td', { class: 'row-actions' }, t.paused_at
              ? button('Resume', 'resume-ticker', async () => { await api('POST', '/ticker/' + enc(t.ticker) + '/resume'); return 'ticker ' + t.ticker + ' resumed'; }, 'small primary')
              : button('Pause', 'pause-ticker', async () => { await api('POST', '/ticker/' + enc(t.ticker) + '/pause'); return 'ticker ' + t.ticker + ' paused'; }, 'small')))))) : h('div', { class: 'card empty' }, h('p', null, 'No tickers.')),
        list.count > 100 ? pager(list.count, offset, 100, (off) => '#/tickers?offset=' + off) : null,
      ]);
    }
    return makePage(load);
  }

  // ---------------------------------------------------------------- failed tasks, all queues
  function failedPage(q) {
    setNav('failed');
    const offset = intParam(q, 'offset');
    // Newest failure first: `offset` counts from the newest, while the API lists by id,
    // oldest first; so read the count, then the slice of ids that ends `offset` from the top.
    async function load(page) {
      const total = (await api('GET', '/task', { status: 'failed', offset: 0, limit: 0 })).count || 0;
      if (offset > 0 && offset >= total && total > 0) { location.replace('#/failed?offset=' + Math.floor((total - 1) / PAGE) * PAGE); return; }
      const end = Math.max(0, total - offset);
      const start = Math.max(0, end - PAGE);
      const list = await api('GET', '/task', { status: 'failed', offset: start, limit: end - start });
      const tasks = (list.body || []).slice().reverse();
      page.render(list, () => [
        h('div', { class: 'page-head' }, h('h1', null, 'Failed tasks'), h('span', { class: 'muted' }, 'all queues · ' + list.count + ' failed · newest first')),
        tasksTable(tasks, true, (t) => button('↻ Retry', 'retry-row', async () => { await api('POST', '/task/' + t.id + '/retry'); return 'task #' + t.id + ' is new again'; }, 'small')),
        pager(list.count, offset, PAGE, (off) => '#/failed?offset=' + off),
      ]);
    }
    return makePage(load, {
      onEvent(type, ev) { if (type === 'task' && (ev.status === 'failed' || ev.event === 'retry' || ev.event === 'deleted')) this.soon(); },
    });
  }

  // ---------------------------------------------------------------- router
  function notFound(path) {
    setNav('');
    return makePage(async (page) => page.render(path, () => h('div', { class: 'card' }, h('h1', null, 'Not found'), h('p', null, 'No page ' + path + '. '), h('a', { href: '#/' }, '← overview'))));
  }
  function route() {
    routeGen++;
    clearError();
    if (authNeeded) return;
    const { path, query } = parseHash();
    let m;
    if (path === '/') current = overviewPage();
    else if ((m = /^\/queue\/([^/]+)$/.exec(path))) current = queuePage(decodeURIComponent(m[1]), query);
    else if ((m = /^\/task\/(\d+)$/.exec(path))) current = taskPage(m[1]);
    else if (path === '/tickers') current = tickersPage(query);
    else if (path === '/failed') current = failedPage(query);
    else current = notFound(path);
    current.refresh();
  }
  window.addEventListener('hashchange', route);
  setInterval(() => {
    if (current && document.visibilityState === 'visible') current.refresh();
  }, 5000);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible' && current) current.refresh(); });

  updateSignout();
  setLive('connecting', 'connecting…');
  startStream();
  route();
})();
