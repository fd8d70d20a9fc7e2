// Hotjar's hotjar-{id}.js: reads `window._hjSettings` (recorded as
// `__standin.hotjarSettings`, e.g. `{"hjid": 123, "hjsv": 6}`), replays the
// calls its stub queued in `hj.q`, and replaces `window.hj` with a function
// that records every call in `__standin.hj` (`["identify", "u1", {...}]`,
// `["event", "Signed Up"]`).
S.hotjarSettings = plain(window._hjSettings || null);
var previous = window.hj;
if (!(previous && previous.__standin === true)) {
  var queued = (previous && previous.q) || [];
  var hj = function () {
    record('hj', arguments);
  };
  hj.__standin = true;
  window.hj = hj;
  for (var i = 0; i < queued.length; i++) {
    hj.apply(null, isArgs(queued[i]) ? queued[i] : [queued[i]]);
  }
}
