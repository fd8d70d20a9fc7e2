// Switchyard loader, part one: `cargo xtask build-client` puts this file
// and web/loader.js in one function scope, after wasm-bindgen's glue.
//
// The page's listeners (`analytics.on`, `once`, `off`): `emit` calls
// those of an event, drops the `once` ones, and returns what they threw,
// which the library reports.
//
// Helpers for device-mode vendors. `stub`: a vendor snippet's queueing
// function (gtag, fbq, hj ...), keeping its `arguments` in `queue` until
// the vendor's script sets `callMethod`; only JavaScript can keep an
// `arguments` object, which these scripts expect. `load`: adds a vendor's
// script tag; settles once the script ran, failed, or took `ms` too long.
var listeners = [];
var vendor = {
  on: function (name, f, once) {
    listeners.push([name, f, once]);
  },
  off: function (name, f) {
    listeners = listeners.filter(function (l) { return !(l[0] === name && (!f || l[1] === f)); });
  },
  emit: function (name, args) {
    var matched = listeners.filter(function (l) { return l[0] === name; });
    listeners = listeners.filter(function (l) { return !(l[0] === name && l[2]); });
    var thrown = [];
    matched.forEach(function (l) {
      try { l[1].apply(undefined, args); } catch (e) { thrown.push(e); }
    });
    return thrown;
  },
  stub: function (queue) {
    var f = function () {
      f.callMethod ? f.callMethod.apply(f, arguments) : queue.push(arguments);
    };
    f.push = f;
    f.loaded = true;
    f.version = "2.0";
    return f;
  },
  load: function (url, attributes, ms) {
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      for (var name in attributes) tag.setAttribute(name, attributes[name]);
      tag.async = true;
      tag.onload = resolve;
      tag.onerror = function () { reject(new Error("could not load " + url)); };
      setTimeout(function () { reject(new Error(url + " did not load in time")); }, ms);
      tag.src = url;
      (document.head || document.documentElement).appendChild(tag);
    });
  },
};
