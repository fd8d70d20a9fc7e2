// Switchyard loader. `cargo xtask build-client` wraps wasm-bindgen's glue
// and this file in one function scope and minifies them; the server inlines
// a source's settings in place of the placeholder. The page gains no
// globals but its analytics object.
var config = __SWITCHYARD_CONFIG__;
var script = document.currentScript;
// The snippet names the global it created; Segment's default is `analytics`.
var key = (script && script.getAttribute("data-global-segment-analytics-key")) || "analytics";
// Events go back to where this script came from.
var base = config.apiHost || (script && script.src ? script.src.replace(/\/analytics\.js\/v1\/.*$/, "") : location.origin);
config.apiHost = base;

// `vendor` (web/vendor.js, in the same scope): the event pipeline and the
// helpers for device-mode vendors' scripts.
wasm_bindgen({ module_or_path: base + "/b/" + config.wasm + ".wasm" }).then(function (exports) {
  var snippet = window[key];
  var queue = Array.isArray(snippet) ? snippet.slice() : [];
  var call = wasm_bindgen.call;
  var facade = { initialized: true, _writeKey: config.writeKey, VERSION: "switchyard-" + config.revision };
  [
    "track", "identify", "page", "screen", "alias", "ready", "reset", "setAnonymousId", "debug",
    "on", "once", "off", "addSourceMiddleware", "addDestinationMiddleware", "register", "consent",
  ].forEach(function (method) {
    facade[method] = function () {
      return call(method, Array.prototype.slice.call(arguments));
    };
  });
  facade.group = function () {
    if (arguments.length) return call("group", Array.prototype.slice.call(arguments));
    return { id: function () { return call("_groupId", []); }, traits: function () { return call("_groupTraits", []); } };
  };
  facade.user = function () {
    return {
      id: function () { return call("_userId", []); },
      anonymousId: function () { return call("_anonymousId", []); },
      traits: function () { return call("_traits", []); },
    };
  };
  facade.pageview = function (url) { return call("page", [{ path: url }]); };
  facade.load = function () {};
  vendor.call = call;
  vendor.facade = facade;
  wasm_bindgen.start(config, (snippet && snippet._loadOptions) || {}, vendor, exports);
  window[key] = facade;
  // Calls made before the library loaded, in the order they were made.
  queue.forEach(function (c) {
    if (Array.isArray(c) && typeof facade[c[0]] === "function") facade[c[0]].apply(facade, c.slice(1));
  });
}, function (error) {
  if (window.console) console.error("Switchyard failed to load", error);
});
