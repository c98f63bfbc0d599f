// rr's web console: login, hosts, events, the session log, and terminals
// (xterm.js over a WebSocket). Every string from the server goes into the
// page as text, never as HTML.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';

let me = null; // {person, role, team, csrf}
const app = document.getElementById('app');

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k.nodeType ? k : String(k));
  return e;
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    if (me) opts.headers['X-CSRF-Token'] = me.csrf;
    opts.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (r.status === 401 && !path.startsWith('/api/login') && !path.startsWith('/api/start')) { me = null; route(); }
  if (!r.ok) throw new Error((data && data.error) || `HTTP ${r.status}`);
  return data;
}

// ---- login
function loginPage(err) {
  const user = el('input', { type: 'text', id: 'username', autocomplete: 'username', required: true });
  const pass = el('input', { type: 'password', id: 'password', autocomplete: 'current-password', required: true });
  const msg = el('div', { class: 'error', id: 'login-error' }, err || '');
  const form = el('form', { class: 'card', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    try {
      const s = await api('POST', '/api/login', { username: user.value, password: pass.value });
      pass.value = '';
      await conversation(s, '/api/login/answer', 'Log in');
      await loadMe();
    } catch (e) { msg.textContent = e.message; }
  } },
  el('label', { for: 'username' }, 'Username'), user,
  el('label', { for: 'password' }, 'Password'), pass,
  el('div', { class: 'actions', style: 'margin-top:14px' }, el('button', { type: 'submit', id: 'login' }, 'Log in')), msg);
  app.replaceChildren(el('div', { class: 'login' }, el('h1', {}, 'rr · Rapid Response'), form));
  user.focus();
}

// conversation answers a server's questions (team, passphrase, code) in
// a dialog, one at a time, until it is done; it returns the last step.
async function conversation(s, answerPath, title, extra) {
  while (s && s.question) {
    const answer = await ask(title, s.question, extra);
    s = await api('POST', answerPath, { conv: s.conv, answer });
  }
  return s;
}

function ask(title, q, extra) {
  return new Promise((resolve, reject) => {
    const input = el('input', { type: q.echo ? 'text' : 'password', id: 'answer', autocomplete: 'off' });
    const done = (ok) => { modal.remove(); ok ? resolve(input.value) : reject(new Error('cancelled')); };
    const modal = el('div', { class: 'modal' }, el('form', { class: 'card', onsubmit: (ev) => { ev.preventDefault(); done(true); } },
      el('h1', {}, title),
      q.instruction ? el('p', { class: 'muted', id: 'instruction' }, q.instruction) : null,
      el('label', { for: 'answer', id: 'prompt' }, q.prompt), input,
      extra ? extra() : null,
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => done(false) }, 'Cancel'),
        el('button', { type: 'submit', id: 'confirm' }, 'Confirm'))));
    document.body.append(modal);
    input.focus();
  });
}

async function loadMe() {
  try { me = await api('GET', '/api/me'); } catch { me = null; }
  route();
}

// ---- layout
let layout, mainEl, termEl;
function frame(active) {
  if (!layout) {
    mainEl = el('main', { id: 'main' });
    termEl = el('section', { class: 'term', id: 'terminal' });
    layout = el('div', { id: 'layout', class: 'dock-' + (localStorage.getItem('rr-dock') || 'bottom') },
      el('header', {},
        el('span', { class: 'brand' }, 'rr · Rapid Response'),
        el('nav', {}, ...[['#/hosts', 'Start session'], ['#/events', 'Events'], ['#/sessions', 'Session log']].map(([h, t]) => el('a', { href: h, 'data-nav': h }, t))),
        el('span', { class: 'who', id: 'who' }, `${me.person} · ${me.team || 'no team'} · ${me.role}`),
        el('button', { class: 'secondary', id: 'logout', onclick: logout }, 'Log out')),
      el('div', { id: 'body' }, mainEl, termEl));
  }
  if (!layout.isConnected) app.replaceChildren(layout);
  for (const a of layout.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === active);
  return mainEl;
}

async function logout() {
  try { await api('POST', '/api/logout'); } catch { /* gone already */ }
  me = null; layout = null; location.hash = '#/login'; route();
}

// ---- hosts
async function hostsPage() {
  const main = frame('#/hosts');
  const search = el('input', { type: 'search', id: 'search', placeholder: 'Search hosts' });
  const tbody = el('tbody');
  main.replaceChildren(el('h1', {}, 'Rapid Response · Start session'), el('div', { class: 'toolbar' }, search),
    el('table', { id: 'hosts' }, el('thead', {}, el('tr', {}, el('th', {}, 'Host'), el('th', {}, 'Agent'), el('th', {}, ''))), tbody));
  let hosts = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    tbody.replaceChildren(...hosts.filter((h) => h.name.toLowerCase().includes(q)).map((h) => el('tr', {},
      el('td', {}, h.name),
      el('td', {}, el('span', { class: 'pill ' + (h.online ? 'online' : 'offline') }, h.online ? 'online' : 'offline')),
      el('td', {}, el('button', { disabled: !h.online, 'data-host': h.name, onclick: () => startSession({ host: h.name }) }, 'Start session')))));
    if (!tbody.children.length) tbody.append(el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'No host matches.')));
  };
  search.addEventListener('input', draw);
  try { hosts = await api('GET', '/api/hosts'); draw(); } catch (e) { main.append(el('div', { class: 'error' }, e.message)); }
}

// ---- starting a session
async function startSession(target) {
  let dock = localStorage.getItem('rr-dock') || 'bottom';
  const docks = () => el('div', { class: 'docks' }, 'Dock:', ...['bottom', 'right', 'window'].map((d) => el('label', {},
    el('input', { type: 'radio', name: 'dock', value: d, checked: d === dock, onchange: () => { dock = d; } }), ' ', d)));
  try {
    let s = await api('POST', '/api/start', target);
    const title = target.event ? `Respond to ${target.event}` : `Start session on ${target.host}`;
    s = await conversation(s, '/api/start/answer', title, docks);
    if (dock === 'window') {
      window.open('/#/terminal/' + encodeURIComponent(s.ticket) + '/' + encodeURIComponent(target.host || target.event), '_blank', 'popup,width=960,height=600');
      return;
    }
    localStorage.setItem('rr-dock', dock);
    layout.className = 'dock-' + dock;
    openTerminal(s.ticket, target.host || target.event);
  } catch (e) {
    if (e.message !== 'cancelled') alert(e.message);
  }
}

let current = null; // the running terminal
function openTerminal(ticket, label) {
  if (current) current.close();
  const screen = el('div', { class: 'screen' });
  const status = el('span', { class: 'muted', id: 'term-status' }, 'connecting…');
  const dockBtn = (d) => el('button', { class: layout && layout.className === 'dock-' + d ? 'on' : '', 'data-dock': d,
    onclick: () => { layout.className = 'dock-' + d; localStorage.setItem('rr-dock', d); for (const b of termEl.querySelectorAll('[data-dock]')) b.classList.toggle('on', b.dataset.dock === d); fit(); term.focus(); } }, d);
  termEl.replaceChildren(el('div', { class: 'bar' }, el('span', { class: 'title' }, 'Session · ' + label, ' ', status),
    document.body.classList.contains('popup') ? null : [dockBtn('bottom'), dockBtn('right'),
      el('button', { id: 'term-hide', onclick: () => { termEl.classList.remove('open'); } }, 'Hide')]), screen);
  termEl.classList.add('open');
  const term = new Terminal({ cursorBlink: true, fontSize: 14, convertEol: false, scrollback: 5000 });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.open(screen);
  window.rrTerm = term; // for tests: the screen's text
  const fit = () => { try { fitAddon.fit(); } catch { /* hidden */ } };
  fit();
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/terminal?ticket=${encodeURIComponent(ticket)}&cols=${term.cols}&rows=${term.rows}`);
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  ws.onopen = () => { status.textContent = 'live'; term.focus(); };
  ws.onmessage = (m) => {
    if (typeof m.data === 'string') {
      const c = JSON.parse(m.data);
      if (c.type === 'exit') status.textContent = 'exited with status ' + c.status;
      return;
    }
    term.write(new Uint8Array(m.data));
  };
  ws.onclose = (ev) => {
    if (status.textContent === 'live' || status.textContent === 'connecting…') status.textContent = 'closed';
    term.write('\r\n[session closed' + (ev.reason ? ': ' + ev.reason : '') + ']\r\n');
    term.options.disableStdin = true;
    status.dataset.closed = '1';
  };
  term.onData((d) => { if (ws.readyState === 1) ws.send(enc.encode(d)); });
  term.onResize(({ cols, rows }) => { if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'resize', cols, rows })); });
  const ro = new ResizeObserver(fit);
  ro.observe(screen);
  current = { close: () => { ro.disconnect(); ws.close(); term.dispose(); } };
}

// ---- events
const when = (t) => t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '';

async function eventsPage() {
  const main = frame('#/events');
  const tbody = el('tbody');
  main.replaceChildren(el('h1', {}, 'Events'), el('table', { id: 'events' }, el('thead', {}, el('tr', {},
    ...['Time', 'Priority', 'Rule', 'Host', 'Status', 'ID'].map((h) => el('th', {}, h)))), tbody));
  try {
    const list = await api('GET', '/api/events');
    tbody.replaceChildren(...list.map((e) => el('tr', { class: 'click', 'data-event': e.id, onclick: () => { location.hash = '#/events/' + e.id; } },
      el('td', {}, when(e.time)), el('td', {}, e.priority), el('td', {}, e.rule), el('td', {}, e.host || `unknown (${e.source_host})`),
      el('td', {}, el('span', { class: 'pill' }, e.status)), el('td', {}, e.id))));
    if (!list.length) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No events.')));
  } catch (e) { main.append(el('div', { class: 'error' }, e.message)); }
}

async function eventPage(id) {
  const main = frame('#/events');
  main.replaceChildren(el('h1', {}, 'Event ' + id));
  try {
    const e = await api('GET', '/api/events/' + encodeURIComponent(id));
    const rows = [['Rule', e.rule], ['Priority', e.priority], ['Time', when(e.time)], ['Host', e.host || `unknown (${e.source_host})`],
      ['Source', e.source], ['Status', e.status + (e.status_by ? ' by ' + e.status_by : '')], ['Summary', e.summary]];
    main.append(el('div', { class: 'card' }, el('dl', {}, ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v || '')])),
      e.host ? el('button', { id: 'respond', onclick: () => startSession({ event: e.id }) }, 'Respond: Launch Rapid Response')
        : el('p', { class: 'muted' }, 'This event fired on a host rr does not know: it cannot be responded to from here.')));
  } catch (err) { main.append(el('div', { class: 'error' }, err.message)); }
}

// ---- session log
const duration = (s) => { s = Math.round(s); return s < 60 ? s + 's' : s < 3600 ? Math.floor(s / 60) + 'm' + (s % 60) + 's' : Math.floor(s / 3600) + 'h' + Math.floor(s % 3600 / 60) + 'm'; };

async function sessionsPage() {
  const main = frame('#/sessions');
  const tbody = el('tbody');
  main.replaceChildren(el('h1', {}, 'Session log'), el('table', { id: 'sessions' }, el('thead', {}, el('tr', {},
    ...['Initiator', 'Started', 'Host', 'State', 'Duration', 'In', 'Out', 'ID', ''].map((h) => el('th', {}, h)))), tbody));
  try {
    const list = await api('GET', '/api/sessions');
    tbody.replaceChildren(...list.map((s) => el('tr', { 'data-session': s.id },
      el('td', {}, s.person), el('td', {}, when(s.started)), el('td', {}, s.host),
      el('td', {}, el('span', { class: 'pill ' + s.state }, s.state + (s.killed_by ? ' by ' + s.killed_by : ''))),
      el('td', {}, duration(s.duration_seconds)), el('td', {}, s.bytes_in), el('td', {}, s.bytes_out), el('td', { class: 'muted' }, s.id),
      el('td', {}, s.state === 'live'
        ? [el('button', { class: 'secondary', 'data-watch': s.id, onclick: () => watchSession(s) }, 'Watch'), ' ',
          el('button', { class: 'danger', 'data-close': s.id, onclick: () => closeSession(s) }, 'Close')]
        : el('a', { class: 'button', href: '/api/recordings/' + encodeURIComponent(s.id), download: s.id + '.gz', 'data-download': s.id }, 'Download')))));
    if (!list.length) tbody.append(el('tr', {}, el('td', { colspan: 9, class: 'muted' }, 'No sessions.')));
  } catch (e) { main.append(el('div', { class: 'error' }, e.message)); }
}

// watchSession follows a live session read-only in the terminal: the
// host's passphrase is asked there; q stops.
async function watchSession(s) {
  try {
    const t = await api('POST', `/api/sessions/${encodeURIComponent(s.id)}/watch`, {});
    openTerminal(t.ticket, `watching ${s.person} on ${s.host}`);
  } catch (e) { alert(e.message); }
}

async function closeSession(s) {
  try {
    const reason = await ask('Close session ' + s.id, { prompt: `Why close ${s.person}'s session on ${s.host}? (they are told)`, echo: true });
    await api('POST', `/api/sessions/${encodeURIComponent(s.id)}/close`, { reason });
  } catch (e) { if (e.message !== 'cancelled') alert(e.message); }
  sessionsPage();
}

// ---- routing
function route() {
  const h = location.hash || '#/hosts';
  const popup = h.match(/^#\/terminal\/([^/]+)\/(.+)$/);
  if (popup && me) { // a terminal in its own window
    document.body.classList.add('popup');
    termEl = el('section', { class: 'term', id: 'terminal' });
    app.replaceChildren(termEl);
    openTerminal(decodeURIComponent(popup[1]), decodeURIComponent(popup[2]));
    return;
  }
  if (!me) return loginPage();
  if (h.startsWith('#/events/')) return eventPage(decodeURIComponent(h.slice(9)));
  if (h === '#/events') return eventsPage();
  if (h === '#/sessions') return sessionsPage();
  return hostsPage();
}
window.addEventListener('hashchange', route);
loadMe();
