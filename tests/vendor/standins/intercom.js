// Intercom's messenger widget (widget.intercom.io/widget/{app_id}): takes
// the calls its stub queued (`function i(){i.c(arguments)}` with `i.q`, or
// a bare `.q` array), replaces `window.Intercom` with a function that
// records every call in `__standin.intercom` (`["boot", {...}]`,
// `["trackEvent", "Signed Up", {...}]`), and replays the queue. Like the
// real widget it boots by itself from `window.intercomSettings` when that
// has an `app_id` and nothing queued a boot: recorded as
// `["boot", intercomSettings]`.
var previous = window.Intercom;
var queued = (previous && previous.q) || [];
if (!(previous && previous.__standin === true)) {
  var intercom = function () {
    record('intercom', arguments);
  };
  intercom.__standin = true;
  window.Intercom = intercom;
  var booted = false;
  for (var i = 0; i < queued.length; i++) {
    var call = queued[i];
    if (call && call[0] === 'boot') booted = true;
    intercom.apply(null, isArgs(call) ? call : [call]);
  }
  var settings = window.intercomSettings;
  if (!booted && settings && settings.app_id) intercom('boot', settings);
}
