// Switchyard loader, part one: `cargo xtask build-client` puts this file
// and web/loader.js in one function scope, after wasm-bindgen's glue.
//
// The module builds each event and keeps identity, consent's context and
// the delivery queue; this file carries the event between the page's own
// functions, which is promise plumbing and smaller in JavaScript:
// analytics-next's pipeline (source middleware; before, enrichment,
// destination and after plugins; destination middleware; consent and
// per-call `integrations`), `ready`, `register` and the page's listeners
// (`on`, `once`, `off`). A listener, plugin or middleware that throws is
// reported to `on('error')` listeners (and the console in debug mode),
// never to the page. The module calls `vendor.dispatch`, `report`,
// `emit`, `device`, `stub` and `load`; this file calls the module through
// `vendor.call` (the loader's `call`).
//
// Helpers for device-mode vendors. `stub`: a vendor snippet's queueing
// function (gtag, fbq, hj ...), keeping its `arguments` in `queue` until
// the vendor's script sets `callMethod`; only JavaScript can keep an
// `arguments` object, which these scripts expect. `load`: adds a vendor's
// script tag; settles once the script ran, failed, or took `ms` too long.

// What plugins receive: analytics-next's Context shape.
function Context(event) {
  this.event = event;
}
Context.prototype.updateEvent = function (path, value) {
  var parts = path.split("."), target = this.event;
  for (var i = 0; i < parts.length - 1; i++) {
    if (typeof target[parts[i]] !== "object" || target[parts[i]] === null) target[parts[i]] = {};
    target = target[parts[i]];
  }
  target[parts[parts.length - 1]] = value;
  return this.event;
};

// How long `ready()`, and an event for a destination, wait for one that
// neither loads nor fails; how long a call's callback waits for its event.
var READY_MS = 1e4, CALLBACK_MS = 300;
var listeners = [], plugins = [], loads = [], sourceMiddleware = [], destinationMiddleware = [];
var debug = false, consent = null;

function isObject(v) {
  return typeof v === "object" && v !== null;
}
function firstFunction(args) {
  for (var i = 0; i < args.length; i++) if (typeof args[i] === "function") return args[i];
}
function sleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}
// Settles when `p` has, or after `ms`, whatever `p` comes to.
function within(p, ms) {
  return Promise.race([p.then(null, function () {}), sleep(ms)]);
}
function settleAll(list) {
  return Promise.all(list.map(function (p) { return p.then(null, function () {}); }));
}
// Whether consent preferences allow a destination that needs `categories`.
function consented(categories) {
  return !consent || categories.every(function (c) { return consent[c] === true; });
}
// Whether per-call `integrations` let an event reach destination `name`:
// its own entry decides; otherwise `All: false` turns it off.
function allowed(integrations, name) {
  var own = isObject(integrations) ? integrations[name] : undefined;
  if (own != null) return own !== false;
  return !(isObject(integrations) && integrations.All === false);
}

function report(message, detail) {
  if (debug && window.console) console.error("Switchyard: " + message, detail);
  var error = new Error(message);
  error.detail = detail;
  emit("error", [error]);
}
// Calls the page's listeners of `name`, dropping the `once` ones.
function emit(name, args) {
  var matched = listeners.filter(function (l) { return l[0] === name; });
  listeners = listeners.filter(function (l) { return !(l[0] === name && l[2]); });
  matched.forEach(function (l) {
    try { l[1].apply(undefined, args); } catch (e) { if (name !== "error") report("an event listener threw", e); }
  });
}

// Destination plugins wait for consent; the others load at once.
function add(obj, name, type, categories, device) {
  var p = { obj: obj, name: name, type: type, categories: categories, device: device, state: "waiting" };
  plugins.push(p);
  if (type !== "destination" || consented(categories)) start(p);
}
function start(p) {
  p.state = "loading";
  var started;
  try {
    started = p.device !== undefined ? vendor.call("_deviceLoad", [p.device])
      : typeof p.obj.load === "function" ? p.obj.load(new Context({}), vendor.facade) : undefined;
  } catch (e) {
    started = Promise.reject(e);
  }
  p.loading = Promise.resolve(started).then(function () { p.state = "loaded"; }, function (e) {
    p.state = "failed";
    report("destination " + p.name + " failed to load", e);
  });
  loads.push(p.loading);
}
function loadConsented() {
  plugins.forEach(function (p) { if (p.state === "waiting" && consented(p.categories)) start(p); });
}

// Runs a middleware chain; each passes the payload on with `next(payload)`
// or drops the event with `next(null)`. Resolves to the event, or null.
async function middleware(chain, event, destination) {
  for (var i = 0; i < chain.length; i++) {
    var arg = { payload: { obj: event }, integrations: event.integrations };
    if (destination) arg.destination = destination;
    var out = await new Promise(function (resolve) {
      arg.next = resolve;
      chain[i](arg);
    });
    if (out == null) return null;
    event = isObject(out.obj) ? out.obj : out;
  }
  return event;
}
// `plugin[method](ctx)`, waited for; a context it resolves to replaces ctx.
async function runPlugin(plugin, method, ctx) {
  if (typeof plugin[method] !== "function") return ctx;
  var out = await plugin[method](ctx);
  return isObject(out) && isObject(out.event) ? out : ctx;
}

async function dispatch(kind, event) {
  var list = plugins.slice();
  try {
    var kept = await middleware(sourceMiddleware, event);
    if (!kept) return null;
    event = kept;
  } catch (e) {
    report("source middleware threw", e);
  }
  var ctx = new Context(event);
  for (var stage of ["before", "enrichment"]) {
    for (var p of list) {
      if (p.type !== stage) continue;
      try {
        ctx = await runPlugin(p.obj, kind, ctx);
      } catch (e) {
        report("plugin " + p.name + " threw", e);
        // A failing `before` plugin stops the event, as in analytics-next.
        if (stage === "before") return ctx;
      }
    }
  }
  event = ctx.event;
  if (!isObject(event)) return ctx;
  var integrations = event.integrations;
  // The destinations this event is for: allowed by the call's integrations
  // and by consent, and not failed to load.
  var candidates = list.filter(function (p) {
    return p.type === "destination" && p.state !== "failed" && allowed(integrations, p.name) && consented(p.categories);
  });
  // Which destinations get the event here and which the server delivers,
  // so that none gets it twice; settled before any wait, so the event is
  // queued (and kept across a reload) at once.
  event._metadata = {
    bundled: ["Segment.io"].concat(candidates.map(function (p) { return p.name; })),
    unbundled: (vendor.unbundled || []).slice(),
    bundledIds: [],
  };
  // Per-call `All: false` does not turn the tracking API off; only
  // `'Segment.io': false` does (as in analytics-next).
  if (!isObject(integrations) || integrations["Segment.io"] !== false) vendor.call("_enqueue", [kind, event]);
  // Destinations still loading are waited for; one that fails or times
  // out is passed over.
  var targets = [];
  for (var c of candidates) {
    if (!c.loading) continue;
    await within(c.loading, READY_MS);
    if (c.state === "loaded") targets.push(c);
  }
  var json = JSON.stringify(event);
  await Promise.all(targets.map(async function (p) {
    var chain = destinationMiddleware.filter(function (m) { return m[0] === p.name; }).map(function (m) { return m[1]; });
    try {
      var e = await middleware(chain, JSON.parse(json), p.name);
      if (!e) return;
      if (p.device !== undefined) vendor.call("_deviceSend", [p.device, e]);
      else await runPlugin(p.obj, kind, new Context(e));
    } catch (e) {
      report("destination " + p.name + " threw", e);
    }
  }));
  for (var a of list) {
    if (a.type !== "after") continue;
    try {
      await runPlugin(a.obj, kind, ctx);
    } catch (e) {
      report("plugin " + a.name + " threw", e);
    }
  }
  emit(kind, kind === "track" ? [event.event, event.properties]
    : kind === "identify" ? [event.userId, event.traits]
    : kind === "group" ? [event.groupId, event.traits]
    : kind === "alias" ? [event.userId, event.previousId]
    : [event.category, event.name, event.properties]);
  return ctx;
}

var vendor = {
  // Set by the loader: the module's `call`, the page's analytics object,
  // the destinations the server delivers to (`_metadata.unbundled`).
  call: null,
  facade: undefined,
  unbundled: [],
  report: report,
  emit: emit,
  // A built event: through the pipeline; the callback runs when it is
  // dispatched, or after 300 ms. Resolves to the event's context.
  dispatch: function (kind, event, callback) {
    var done = dispatch(kind, event);
    if (callback) {
      Promise.race([done, sleep(CALLBACK_MS)]).then(function (ctx) {
        try { callback(ctx); } catch (e) { report("a callback threw", e); }
      });
    }
    return done;
  },
  // A device-mode destination of the bundle, run by the module's device host.
  device: function (index, name, categories) {
    add({ name: name }, name, "destination", strings(categories), index);
  },
  // The public calls kept here, by name, with the page's arguments.
  api: {
    ready: function () {
      var callback = firstFunction(arguments);
      return within(settleAll(loads.slice()), READY_MS).then(function () {
        if (callback) try { callback(); } catch (e) { report("a ready callback threw", e); }
        emit("ready", []);
      });
    },
    register: function () {
      for (var i = 0; i < arguments.length; i++) {
        var p = arguments[i];
        if (!isObject(p)) continue;
        if (["before", "enrichment", "destination", "after", "utility"].indexOf(p.type) < 0) {
          report("a plugin without a valid type was not registered", p);
          continue;
        }
        add(p, typeof p.name === "string" ? p.name : "", p.type, strings(p.consentCategories));
      }
      return settleAll(loads.slice()).then(function () {});
    },
    on: function (name) { listen(name, firstFunction(arguments), false); },
    once: function (name) { listen(name, firstFunction(arguments), true); },
    off: function (name) {
      var f = firstFunction(arguments);
      if (typeof name === "string") listeners = listeners.filter(function (l) { return !(l[0] === name && (!f || l[1] === f)); });
    },
    addSourceMiddleware: function () {
      var f = firstFunction(arguments);
      if (f) sourceMiddleware.push(f);
    },
    addDestinationMiddleware: function (name) {
      var f = firstFunction(arguments);
      if (typeof name === "string" && f) destinationMiddleware.push([name, f]);
    },
    debug: function (on) { debug = on !== false; },
    // `consent({categoryPreferences})` or the preferences alone; the module
    // puts them in each event's context.
    consent: function (given) {
      vendor.setConsent(isObject(given) && isObject(given.categoryPreferences) ? given.categoryPreferences
        : isObject(given) ? given : null);
    },
  },
  setConsent: function (preferences) {
    consent = preferences;
    vendor.call("_consent", [preferences]);
    loadConsented();
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
function listen(name, f, once) {
  if (typeof name === "string" && f) listeners.push([name, f, once]);
}
function strings(v) {
  return Array.isArray(v) ? v.filter(function (s) { return typeof s === "string"; }) : [];
}
