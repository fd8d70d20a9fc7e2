// Klaviyo's klaviyo.js: reads `company_id` from its URL
// (`__standin.klaviyoCompanyId`), processes the entries already queued,
// then replaces each queue with an object whose `push` (and methods) record
// calls, each as an array (`["identify", {...}]`,
// `["track", "Viewed Product", {...}]`):
// - `_klOnsite`, where Klaviyo's current snippet (a Proxy as `klaviyo`)
//   queues, and a `klaviyo` array stub: into `__standin.klaviyo`;
// - the legacy `_learnq` array: into `__standin.learnq`.
S.klaviyoCompanyId = param('company_id');
function takeOver(global, key) {
  var previous = window[global];
  if (previous && previous.__standin === true) return;
  var queued =
    previous && typeof previous.length === 'number' ? Array.prototype.slice.call(previous) : [];
  var replacement = { __standin: true };
  replacement.push = function () {
    for (var j = 0; j < arguments.length; j++) record(key, arguments[j]);
    return 0;
  };
  ['identify', 'track', 'account', 'trackViewedItem', 'openForm'].forEach(function (method) {
    replacement[method] = function () {
      record(key, [method].concat(Array.prototype.slice.call(arguments)));
      return Promise.resolve();
    };
  });
  window[global] = replacement;
  for (var i = 0; i < queued.length; i++) replacement.push(queued[i]);
}
takeOver('_klOnsite', 'klaviyo');
takeOver('klaviyo', 'klaviyo');
takeOver('_learnq', 'learnq');
