// gtm.js (Google Tag Manager): processes the data layer named by the
// script URL's `l` parameter (`dataLayer` by default), entries already
// pushed and later pushes, and records each in `__standin.gtm` (an
// `arguments` entry as an array). The container id is in
// `__standin.gtmIds`. Unlike the real script it pushes no `gtm.dom` or
// `gtm.load` events of its own.
var name = param('l') || 'dataLayer';
var dl = (window[name] = window[name] || []);
record('gtmIds', param('id'));
if (!dl.__standinGtm) {
  var handle = function (entry) {
    record('gtm', entry);
  };
  for (var i = 0; i < dl.length; i++) handle(dl[i]);
  var previous = dl.push;
  dl.push = function () {
    var result = previous.apply(dl, arguments);
    for (var j = 0; j < arguments.length; j++) handle(arguments[j]);
    return result;
  };
  dl.__standinGtm = true;
}
