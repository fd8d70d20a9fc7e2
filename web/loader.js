// Switchyard loader. The server prepends wasm-bindgen's glue and inlines
// this source's settings in place of the placeholder; both run inside one
// function scope, so the page gains no globals but its analytics object.
var config = __SWITCHYARD_CONFIG__;
var script = document.currentScript;
// The snippet names the global it created; Segment's default is `analytics`.
var key = (script && script.getAttribute("data-global-segment-analytics-key")) || "analytics";
// Events go back to where this script came from.
var base = config.apiHost || (script && script.src ? script.src.replace(/\/analytics\.js\/v1\/.*$/, "") : location.origin);
config.apiHost = base;
wasm_bindgen({ module_or_path: base + "/b/" + config.wasm + ".wasm" }).then(function () {
  wasm_bindgen.start(config);
  var stub = window[key];
  var queue = Array.isArray(stub) ? stub.slice() : [];
  var facade = { initialized: true, _writeKey: config.writeKey, VERSION: "switchyard" };
  ["track", "identify", "page"].forEach(function (method) {
    facade[method] = function () {
      wasm_bindgen.call(method, Array.prototype.slice.call(arguments));
      return facade;
    };
  });
  facade.user = function () {
    return { anonymousId: wasm_bindgen.anonymousId };
  };
  window[key] = facade;
  // Calls made before the library loaded, in the order they were made.
  queue.forEach(function (call) {
    if (Array.isArray(call) && typeof call[0] === "string") {
      wasm_bindgen.call(call[0], call.slice(1));
    }
  });
}, function (error) {
  if (window.console) console.error("Switchyard failed to load", error);
});
