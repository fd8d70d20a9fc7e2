// fbevents.js (Meta Pixel): like the real script, picks up the `fbq` stub
// (`n.callMethod ? n.callMethod.apply(n, arguments) : n.queue.push(arguments)`),
// sets `fbq.callMethod`, and replays `fbq.queue`. Each call is recorded in
// `__standin.fbq` as an array of its arguments (`["init", "123"]`,
// `["track", "Purchase", {...}]`).
var fbq = window.fbq;
if (!fbq) {
  // No stub: define one as the snippet would.
  fbq = window.fbq = function () {
    fbq.callMethod ? fbq.callMethod.apply(fbq, arguments) : fbq.queue.push(arguments);
  };
  fbq.push = fbq;
  fbq.loaded = true;
  fbq.version = '2.0';
  fbq.queue = [];
}
if (!window._fbq) window._fbq = fbq;
if (!fbq.callMethod) {
  fbq.callMethod = function () {
    record('fbq', arguments);
  };
  var queued = fbq.queue || [];
  fbq.queue = [];
  for (var i = 0; i < queued.length; i++) fbq.callMethod.apply(fbq, queued[i]);
}
