// Helpers shared by the pages (index.html, parity.html, bench/web/*.html), so that an error
// shows on the page (and in window.quantannResult for tools/run-page.js) instead of
// leaving it on "loading…".

// fetch() that fails on an HTTP error status instead of handing back the error page.
export async function fetchOk(url, init) {
  const r = await fetch(url, init);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}${r.statusText ? ' ' + r.statusText : ''}`);
  return r;
}

// Shows an error in `el` (class "error"); returns the text shown.
export function showError(el, e) {
  const text = `error: ${e?.message ?? e}`;
  el.textContent = text;
  el.classList.add('error');
  console.error(e);
  return text;
}

// Any error nobody caught (a failed await at top level, a click handler's rejection) is
// shown in `el` too, and ends a headless run.
export function showUncaughtErrors(el) {
  const on = (e) => {
    const text = showError(el, e);
    window.quantannResult ??= { error: text };
  };
  addEventListener('error', (ev) => on(ev.error ?? ev.message));
  addEventListener('unhandledrejection', (ev) => on(ev.reason));
}
