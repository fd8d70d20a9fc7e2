// Customer.io's track.js: reads the site id from its script tag's
// `data-site-id` (`__standin.cioSiteId`), processes the `_cio` array stub's
// entries (`["identify", {...}]`, `["track", "Signed Up", {...}]`), and
// replaces `window._cio` with an object whose methods and `push` record
// each call in `__standin.cio` as an array (`[method, ...arguments]`).
var tag = SCRIPT || document.getElementById('cio-tracker');
S.cioSiteId = tag ? tag.getAttribute('data-site-id') : null;
var previous = window._cio;
if (!(previous && previous.__standin === true)) {
  var queued = Array.isArray(previous) ? previous.slice() : [];
  var cio = { __standin: true };
  cio.push = function () {
    for (var j = 0; j < arguments.length; j++) record('cio', arguments[j]);
  };
  ['load', 'identify', 'sidentify', 'track', 'page', 'on', 'off', 'reset'].forEach(
    function (method) {
      cio[method] = function () {
        record('cio', [method].concat(Array.prototype.slice.call(arguments)));
      };
    },
  );
  window._cio = cio;
  for (var i = 0; i < queued.length; i++) cio.push(queued[i]);
}
