// gtag.js (Google tag, GA4): takes over `window.dataLayer` as the real
// script does: every entry already pushed, then every later push, is
// processed; the array keeps growing. Calls the `gtag()` stub pushed as
// `arguments` are recorded in `__standin.gtag` as arrays of their
// arguments (`["config", "G-1", {...}]`); other entries (plain objects)
// as they are. The measurement id of the script URL is in
// `__standin.gtagIds`.
var dl = (window.dataLayer = window.dataLayer || []);
record('gtagIds', param('id'));
if (!dl.__standinGtag) {
  var handle = function (entry) {
    record('gtag', entry);
  };
  for (var i = 0; i < dl.length; i++) handle(dl[i]);
  var previous = dl.push;
  dl.push = function () {
    var result = previous.apply(dl, arguments);
    for (var j = 0; j < arguments.length; j++) handle(arguments[j]);
    return result;
  };
  dl.__standinGtag = true;
}
