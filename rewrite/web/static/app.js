// The tracegrad playground page: reads the expression, fills the variable table from the parser
// (POST /api/variables), runs the chosen operation (POST /api/<op>) and shows the answer
// (KaTeX), the derivation, the e-graph (POST /api/viz), the generated code and the report.
// The input lives in the URL's hash, so a link restores it.
'use strict';

const $ = id => document.getElementById(id);
const KINDS = ['scalar', 'vector', 'matrix', 'symmetric'];
const state = {vars: {}, order: [], seq: 0, code: null, backend: 'numpy'};

function esc(s) {
  return String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
}

async function post(path, payload) {
  let r;
  try {
    r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                           body: JSON.stringify(payload)});
  } catch (e) {
    return {status: 0, body: {error: {kind: 'network', message: 'the server did not answer: ' + e, position: null}}};
  }
  let body;
  try { body = await r.json(); } catch (e) {
    body = {error: {kind: 'server', message: 'HTTP ' + r.status, position: null}};
  }
  return {status: r.status, body};
}

function tex(el, source) {
  el.textContent = '';
  if (window.katex) {
    window.katex.render(source, el, {displayMode: true, throwOnError: false});
  } else {
    el.textContent = source;
  }
}

// -- the variable table ------------------------------------------------------------------

function declared(name) { return state.vars[name] && state.vars[name].declared; }

function shapeOf(v) {
  const r = v.rows.trim() || v.inferred[0] || 'n', c = v.cols.trim() || v.inferred[1] || r;
  const dim = d => /^\d+$/.test(d) ? parseInt(d, 10) : d;
  if (v.kind === 'scalar') return [];
  if (v.kind === 'vector') return [dim(r)];
  if (v.kind === 'symmetric') return [dim(r), dim(r)];
  return [dim(r), dim(c)];
}

function shapesAndStructure(names = state.order) {
  // names: the table's rows (the variables of the expression last parsed), by default
  const shapes = {}, structure = {};
  for (const name of names) {
    const v = state.vars[name];
    if (!v || !v.declared) continue;
    shapes[name] = shapeOf(v);
    if (v.kind === 'symmetric') structure[name] = 'symmetric';
  }
  return {shapes, structure};
}

function setVariables(list) {
  state.order = list.map(v => v.name);
  for (const v of list) {
    const inferred = v.kind === 'scalar' ? [] : v.kind === 'vector' ? [v.shape[0]] : v.shape;
    const old = state.vars[v.name];
    if (old) {
      old.inferred = inferred.map(String);
    } else {
      state.vars[v.name] = {kind: v.kind, rows: '', cols: '', inferred: inferred.map(String), declared: false};
    }
  }
  renderTable();
  renderWrt();
}

function renderTable() {
  const body = $('vars').querySelector('tbody');
  body.textContent = '';
  for (const name of state.order) {
    const v = state.vars[name];
    const tr = document.createElement('tr');
    tr.dataset.name = name;
    const opts = KINDS.map(k => `<option${k === v.kind ? ' selected' : ''}>${k}</option>`).join('');
    tr.innerHTML = `<td class="name">${esc(name)}</td><td><select class="kind">${opts}</select></td>` +
      `<td><input class="rows" value="${esc(v.rows)}" placeholder="${esc(v.inferred[0] || '')}"></td>` +
      `<td><input class="cols" value="${esc(v.cols)}" placeholder="${esc(v.inferred[1] || '')}"></td>`;
    const rows = tr.querySelector('.rows'), cols = tr.querySelector('.cols');
    const sync = () => {
      rows.disabled = v.kind === 'scalar';
      cols.disabled = v.kind !== 'matrix';
    };
    sync();
    tr.querySelector('.kind').addEventListener('change', e => { v.kind = e.target.value; v.declared = true; sync(); changed(); });
    rows.addEventListener('input', e => { v.rows = e.target.value; v.declared = true; changed(); });
    cols.addEventListener('input', e => { v.cols = e.target.value; v.declared = true; changed(); });
    body.appendChild(tr);
  }
}

function renderWrt(wanted) {
  const sel = $('wrt'), current = wanted || sel.value;
  sel.textContent = '';
  for (const name of state.order) {
    const o = document.createElement('option');
    o.value = o.textContent = name;
    sel.appendChild(o);
  }
  const pick = [current, 'X', 'x', 'W', 'w', 'S'].find(n => state.order.includes(n));
  if (pick) sel.value = pick;
}

// -- errors ------------------------------------------------------------------------------

function offsetOf(text, pos) {
  const lines = text.split('\n');
  let at = 0;
  for (let i = 0; i < pos.line - 1 && i < lines.length; i++) at += lines[i].length + 1;
  return at + pos.column - 1;
}

function showError(err, text) {
  $('error').hidden = false;
  $('error-kind').textContent = (err.kind || 'error') + ' error';
  $('error-where').textContent = err.position ? `at ${err.position.line}:${err.position.column}` : '';
  $('error-message').textContent = err.message;
  const mirror = $('expr-mirror');
  if (err.position && typeof text === 'string') {
    const at = Math.max(0, Math.min(offsetOf(text, err.position), text.length));
    const ch = text.slice(at, at + 1) || ' ';
    mirror.innerHTML = esc(text.slice(0, at)) + `<mark class="error-underline" title="${esc(err.message)}">` +
      esc(ch) + '</mark>' + esc(text.slice(at + 1));
    mirror.hidden = false;
    $('expr').setAttribute('aria-invalid', 'true');
  } else {
    mirror.hidden = true;
    $('expr').removeAttribute('aria-invalid');
  }
}

function clearError() {
  $('error').hidden = true;
  $('expr-mirror').hidden = true;
  $('expr').removeAttribute('aria-invalid');
}

function hideResults() {
  for (const id of ['result', 'derivation', 'egraph-section', 'code-section', 'report-section']) $(id).hidden = true;
}

// -- the answer --------------------------------------------------------------------------

function answerTex(op, b) {
  const w = b.display ? b.display.wrt : b.wrt;
  const f = b.display ? b.display.objective : '';
  const v = state.vars[b.wrt];  // a matrix variable is differentiated in vec layout
  const vecw = v && ['matrix', 'symmetric'].includes(v.kind) ? `\\operatorname{vec}(${w})` : w;
  switch (op) {
    case 'gradient':
      return `\\begin{aligned} f &= ${f} \\\\ \\frac{\\partial f}{\\partial ${w}} &= ${b.latex} \\end{aligned}`;
    case 'hessian':
      return `\\begin{aligned} f &= ${f} \\\\ \\frac{\\partial^2 f}{\\partial ${vecw}\\,\\partial ${vecw}^{\\top}} &= ${b.latex} \\end{aligned}`;
    case 'hvp':
      return `\\begin{aligned} f &= ${f} \\\\ \\nabla^2_{${w}} f \\cdot ${b.direction} &= ${b.latex} \\end{aligned}`;
    case 'jacobian':
      return `\\begin{aligned} F &= ${f} \\\\ \\frac{\\partial \\operatorname{vec} F}{\\partial ${vecw}^{\\top}} &= ${b.latex} \\end{aligned}`;
    case 'simplify':
      return b.latex;
    default:
      return b.equivalent === null ? '\\text{unknown}' : `\\text{${b.equivalent}}`;
  }
}

function answerText(op, b) {
  if (op === 'gradient') return b.gradient;
  if (op === 'simplify') return b.simplified;
  if (op === 'equivalent') return b.equivalent === null ? 'unknown' : String(b.equivalent);
  return b.result;
}

function showAnswer(op, b) {
  $('result').hidden = false;
  tex($('math'), answerTex(op, b));
  $('answer-text').textContent = answerText(op, b);
  if (op === 'equivalent') $('answer-text').textContent += ' — ' + b.reason;
  // a long answer with repeated parts: also with named temporaries (valid input too)
  $('where-box').hidden = !b.where;
  $('answer-where').textContent = b.where ? b.where.text : '';
  if (b.code) {
    state.code = b.code;
    $('code-section').hidden = false;
    showCode();
  }
  if (b.report) {
    const r = b.report;
    $('report').innerHTML = [['stop reason', r.stop_reason], ['iterations', r.iterations],
      ['e-classes', r.eclasses], ['e-nodes', r.enodes], ['seconds', Number(r.seconds).toFixed(3)]]
      .map(([k, v]) => `<tr><th>${k}</th><td>${esc(v)}</td></tr>`).join('');
    $('report-section').hidden = false;
  }
}

function showSteps(steps, note, latex) {
  $('steps-math-box').hidden = !latex;
  if (latex) tex($('steps-math'), latex);
  $('steps').innerHTML = steps.map(s =>
    `<li><span class="q">${esc(s.quantity)}</span> = <span class="expr">${esc(s.expr)}</span>` +
    `<span class="why">${esc(s.phase)}${s.rules.length ? ': ' + esc(s.rules.join(', ')) : ''}</span></li>`).join('');
  $('steps-note').textContent = note || '';
  $('derivation').hidden = false;
}

function showCode() {
  $('code').textContent = state.code ? state.code[state.backend] : '';
  document.querySelectorAll('#backends button').forEach(b => b.classList.toggle('on', b.dataset.backend === state.backend));
}

async function showEgraph(payload, seq) {
  $('egraph-note').textContent = 'drawing…';
  const {status, body} = await post('/api/viz', payload);
  if (seq !== state.seq) return;
  if (status !== 200) {
    $('egraph-note').textContent = body.error ? body.error.message : 'no picture';
    return;
  }
  $('egraph-section').hidden = false;
  $('egraph').srcdoc = body.html;
  $('egraph-note').textContent = `${body.classes} of ${body.total} e-classes` +
    (body.error ? ' — the derivation failed, drawn where it stopped' : '');
}

// -- running -----------------------------------------------------------------------------

function request() {
  const op = $('op').value, {shapes, structure} = shapesAndStructure();
  const p = {expr: $('expr').value, shapes};
  if (op === 'equivalent') p.other = $('other').value;
  if (!['simplify', 'equivalent'].includes(op)) {
    p.wrt = $('wrt').value;
    p.code = true;
    p.display = true;
  }
  if (op === 'gradient') {
    p.steps = true;
    if (Object.keys(structure).length) p.structure = structure;
  }
  return p;
}

async function compute() {
  const op = $('op').value, payload = request(), seq = ++state.seq;
  saveHash();
  if (!payload.expr.trim()) return;
  $('busy').hidden = false;
  const {status, body} = await post('/api/' + op, payload);
  if (seq !== state.seq) return;
  $('busy').hidden = true;
  hideResults();
  const firstOrder = {expr: payload.expr, wrt: payload.wrt, shapes: payload.shapes, structure: payload.structure};
  if (status !== 200) {
    showError(body.error, payload.expr);
    // a derivation that failed inside the e-graph is drawn where it stopped
    if (op === 'gradient' && ['limit', 'canonical-form', 'unsupported'].includes(body.error.kind) && !body.error.position) {
      showEgraph(firstOrder, seq);
    }
    return;
  }
  clearError();
  showAnswer(op, body);
  if (op === 'gradient') {
    showSteps(body.steps || [], '', body.steps_latex);
    showEgraph(firstOrder, seq);
  } else if (op === 'hessian' || op === 'hvp') {
    // the second derivative starts from the gradient: its derivation and e-graph
    const g = await post('/api/gradient', {...firstOrder, steps: true});
    if (seq !== state.seq || g.status !== 200) return;
    showSteps(g.body.steps, `of the gradient ${g.body.gradient}, which the ${op === 'hvp' ? 'HVP' : 'Hessian'} differentiates again`, g.body.steps_latex);
    showEgraph(firstOrder, seq);
  }
}

let inputTimer = null, computeTimer = null;

async function refreshVariables() {
  const text = $('expr').value;
  if (!text.trim()) { setVariables([]); clearError(); hideResults(); return false; }
  // the shapes already declared in the table take part (names no longer used are ignored)
  const {status, body} = await post('/api/variables', {expr: text, shapes: shapesAndStructure(Object.keys(state.vars).slice(-40)).shapes});
  if (text !== $('expr').value) return false;  // typed on since
  if (status !== 200) {
    hideResults();
    showError(body.error, text);
    return false;
  }
  clearError();
  setVariables(body.variables);
  return true;
}

function changed() {
  clearTimeout(computeTimer);
  computeTimer = setTimeout(compute, 350);
}

function typed() {
  clearTimeout(inputTimer);
  clearTimeout(computeTimer);
  inputTimer = setTimeout(async () => { if (await refreshVariables()) changed(); }, 250);
}

// -- permalink ---------------------------------------------------------------------------

function saveHash() {
  const q = new URLSearchParams();
  q.set('op', $('op').value);
  q.set('expr', $('expr').value);
  if ($('op').value === 'equivalent') q.set('other', $('other').value);
  if ($('wrt').value) q.set('wrt', $('wrt').value);
  for (const name of state.order) {
    const v = state.vars[name];
    if (v.declared) q.set('v.' + name, [v.kind, v.rows.trim(), v.cols.trim()].join(':'));
  }
  history.replaceState(null, '', '#' + q.toString());
}

async function load(spec) {
  // spec: {op, expr, other, wrt, vars: {name: {kind, rows, cols}}}
  $('op').value = spec.op || 'gradient';
  $('expr').value = spec.expr || '';
  $('other').value = spec.other || '';
  opChanged(false);
  state.vars = {};
  for (const [name, v] of Object.entries(spec.vars || {})) state.vars[name] = {...v, inferred: [], declared: true};
  state.seq++;
  if (await refreshVariables()) {
    renderWrt(spec.wrt);
    compute();
  }
}

function specFromHash() {
  const q = new URLSearchParams(location.hash.slice(1));
  if (!q.has('expr')) return null;
  const vars = {};
  for (const [k, val] of q) {
    if (!k.startsWith('v.')) continue;
    const [kind, rows, cols] = val.split(':');
    vars[k.slice(2)] = {kind: KINDS.includes(kind) ? kind : 'matrix', rows: rows || '', cols: cols || ''};
  }
  return {op: q.get('op'), expr: q.get('expr'), other: q.get('other'), wrt: q.get('wrt'), vars};
}

function specFromExample(ex) {
  const vars = {};
  for (const [name, dims] of Object.entries(ex.shapes || {})) {
    const sym = ex.structure && ex.structure[name] === 'symmetric';
    const kind = dims.length === 0 ? 'scalar' : dims.length === 1 ? 'vector' : sym ? 'symmetric' : 'matrix';
    vars[name] = {kind, rows: dims.length ? String(dims[0]) : '', cols: dims.length > 1 ? String(dims[1]) : ''};
  }
  return {op: ex.op, expr: ex.expr, other: ex.other, wrt: ex.wrt, vars};
}

// -- wiring ------------------------------------------------------------------------------

function opChanged(run = true) {
  const op = $('op').value;
  $('other-row').hidden = op !== 'equivalent';
  $('wrt-label').hidden = op === 'simplify' || op === 'equivalent';
  if (run) changed();
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const t = document.createElement('textarea');
    t.value = text;
    document.body.appendChild(t);
    t.select();
    document.execCommand('copy');
    t.remove();
  }
  const was = button.textContent;
  button.textContent = 'Copied';
  setTimeout(() => { button.textContent = was; }, 1200);
}

async function start() {
  $('expr').addEventListener('input', typed);
  $('expr').addEventListener('keydown', e => { if (e.key === 'Enter') { clearTimeout(computeTimer); compute(); } });
  $('other').addEventListener('input', changed);
  $('op').addEventListener('change', () => opChanged());
  $('wrt').addEventListener('change', changed);
  $('go').addEventListener('click', () => { clearTimeout(computeTimer); compute(); });
  document.querySelectorAll('button.copy').forEach(b =>
    b.addEventListener('click', () => copy($(b.dataset.copy).textContent, b)));
  document.querySelectorAll('#backends button').forEach(b =>
    b.addEventListener('click', () => { state.backend = b.dataset.backend; showCode(); }));
  $('permalink').addEventListener('click', e => { saveHash(); copy(location.href, e.target); });

  const [ex, lim] = await Promise.all([fetch('/api/examples').then(r => r.json()),
                                       fetch('/api/limits').then(r => r.json())]);
  ex.examples.forEach((e, i) => {
    const o = document.createElement('option');
    o.value = String(i);
    o.textContent = e.title + ' — ' + e.expr;
    $('examples').appendChild(o);
  });
  $('examples').addEventListener('change', e => {
    if (e.target.value !== '') load(specFromExample(ex.examples[Number(e.target.value)]));
    e.target.value = '';
  });
  $('limits').textContent = `Limits per request: ${lim.max_chars} characters, ${lim.seconds} s of derivation, ` +
    `${lim.enodes.toLocaleString()} e-nodes, ${lim.memory_mb} MB of memory growth, a ${lim.deadline} s deadline; ` +
    `${lim.workers} worker processes. Everything runs on this machine.`;
  window.addEventListener('hashchange', () => { const s = specFromHash(); if (s) load(s); });
  load(specFromHash() || specFromExample(ex.examples[0]));
}

document.addEventListener('DOMContentLoaded', start);
