"""JavaScript evaluated in the JupyterLab page (through ``window.jupyterapp`` and the DOM)."""

from __future__ import annotations

_FIND_PANEL = """
const app = window.jupyterapp;
const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
if (!panel) throw new Error('notebook not open: ' + path);
"""

KERNEL_STATE_JS = (
    "(path) => { const app = window.jupyterapp; if (!app) return 'no-app';"
    " const panel = Array.from(app.shell.widgets('main'))"
    ".find(w => w.context && w.context.path === path);"
    " if (!panel) return 'no-panel';"
    " const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;"
    " return kernel ? kernel.status + '/' + kernel.connectionStatus : 'no-kernel'; }"
)

# True when the notebook has no running prompt ("[*]") and its kernel is idle and connected.
SETTLED_JS = (
    "(path) => { const app = window.jupyterapp; const panel = Array.from(app.shell.widgets('main'))"
    ".find(w => w.context && w.context.path === path); if (!panel) return false;"
    " const prompts = Array.from(panel.node.querySelectorAll('.jp-InputArea-prompt'));"
    " if (prompts.some(p => p.textContent.includes('[*]'))) return false;"
    " const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;"
    " return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected'; }"
)

OUTPUTS_JS = (
    "(path) => {"
    + _FIND_PANEL
    + """
  return panel.content.widgets.map((cell, index) => ({
    index, type: cell.model.type,
    source: cell.model.sharedModel.getSource().slice(0, 200),
    outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : [],
  }));
}"""
)

RUN_CELL_JS = (
    "async ({path, code, timeout}) => {"
    + _FIND_PANEL
    + """
  const notebook = panel.content;
  app.shell.activateById(panel.id);
  notebook.mode = 'command';
  notebook.activeCellIndex = notebook.widgets.length - 1;
  await app.commands.execute('notebook:insert-cell-below');
  const cell = notebook.activeCell;
  cell.model.sharedModel.setSource(code);
  const done = app.commands.execute('notebook:run-cell').then(() => 'done');
  const timer = new Promise(resolve => setTimeout(() => resolve('timeout'), timeout));
  const how = await Promise.race([done, timer]);
  return {how, index: notebook.widgets.indexOf(cell), outputs: cell.model.outputs.toJSON(),
          execution_count: cell.model.executionCount};
}"""
)

RUN_ALL_JS = (
    "async ({path, timeout}) => {"
    + _FIND_PANEL
    + """
  app.shell.activateById(panel.id);
  const done = app.commands.execute('notebook:run-all-cells').then(() => 'done');
  const timer = new Promise(resolve => setTimeout(() => resolve('timeout'), timeout));
  return await Promise.race([done, timer]);
}"""
)

# Pixels of every <canvas> under an element: size, a FNV-1a hash of the RGBA bytes, how many
# distinct colours (capped) and how many pixels are not fully transparent. WebGL canvases fall back
# to toDataURL.
CANVAS_STATS_JS = """
(root) => Array.from(root.querySelectorAll('canvas')).map((canvas, index) => {
  const out = {index, width: canvas.width, height: canvas.height,
               css_width: canvas.clientWidth, css_height: canvas.clientHeight,
               classes: canvas.className, control: canvas.dataset.mvControl || '',
               part: canvas.dataset.mvPart || '', hash: '', colors: 0, opaque: 0, source: ''};
  if (!canvas.width || !canvas.height) return out;
  let bytes = null;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  if (ctx) {
    bytes = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    out.source = 'imagedata';
  } else {
    const url = canvas.toDataURL('image/png');
    bytes = new TextEncoder().encode(url);
    out.source = 'dataurl';
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i];
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  out.hash = hash.toString(16);
  if (out.source === 'imagedata') {
    const seen = new Set();
    for (let i = 0; i < bytes.length; i += 4) {
      if (bytes[i + 3] > 0) out.opaque++;
      const rgba = (bytes[i] << 24 | bytes[i + 1] << 16 | bytes[i + 2] << 8 | bytes[i + 3]) >>> 0;
      if (seen.size < 4096) seen.add(rgba);
    }
    out.colors = seen.size;
  }
  return out;
})
"""

# Latency probes. A capture-phase keydown listener on window stamps the key press with
# performance.now() (the first script to see it); a MutationObserver stamps the moment the expected
# DOM change lands.
LATENCY_SETUP_JS = """
() => {
  if (window.__mvLatency) return;
  const state = {key_at: null, key_prevented: null, key_target: ''};
  window.addEventListener('keydown', () => { state.key_at = performance.now(); }, {capture: true});
  // After JupyterLab's own document listener: whether one of its shortcuts cancelled the key.
  document.addEventListener('keydown', (event) => {
    state.key_prevented = event.defaultPrevented;
    const t = event.target;
    const kind = t && t.type ? '[type=' + t.type + ']' : '';
    state.key_target = t && t.tagName ? t.tagName.toLowerCase() + kind : '';
  });
  window.__mvLatency = state;
}
"""

ARM_TEXT_JS = """
([el, expected, timeout]) => {
  const state = window.__mvLatency; state.key_at = null; state.key_prevented = null;
  state.pending = new Promise(resolve => {
    const finish = (ok) => { observer.disconnect(); clearTimeout(timer);
      resolve({ok, key_at: state.key_at, key_prevented: state.key_prevented,
               key_target: state.key_target, done_at: performance.now(), text: el.textContent}); };
    const observer = new MutationObserver(() => {
      if (el.textContent.trim() === expected) finish(true); });
    observer.observe(el, {childList: true, characterData: true, subtree: true});
    const timer = setTimeout(() => finish(false), timeout);
  });
}
"""

ARM_SEQ_JS = """
([root, timeout]) => {
  const state = window.__mvLatency; state.key_at = null; state.key_prevented = null;
  const before = root.getAttribute('data-mv-seq');
  state.pending = new Promise(resolve => {
    const finish = (ok) => { observer.disconnect(); clearTimeout(timer);
      resolve({ok, key_at: state.key_at, key_prevented: state.key_prevented,
               key_target: state.key_target, done_at: performance.now(), before,
               seq: root.getAttribute('data-mv-seq'),
               state: root.getAttribute('data-mv-state')}); };
    const observer = new MutationObserver(() => {
      const state = root.getAttribute('data-mv-state');
      if (root.getAttribute('data-mv-seq') !== before && state === 'ready') finish(true);
      else if (state === 'error') finish(false);
    });
    observer.observe(root, {attributes: true, attributeFilter: ['data-mv-seq', 'data-mv-state']});
    const timer = setTimeout(() => finish(false), timeout);
  });
}
"""
