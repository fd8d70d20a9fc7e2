// Switchyard admin: a small single-page app over the admin API.
// Everything shown comes from the API and is rendered as text nodes, never
// as HTML, so a name such as <img onerror=...> is shown, not run.
(function () {
  "use strict";

  var TOKEN_KEY = "switchyard_admin_token";
  var app = document.getElementById("app");
  var catalogCache = null;

  // ---- DOM -------------------------------------------------------------

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k.slice(0, 2) === "on" && typeof v === "function") el.addEventListener(k.slice(2), v);
        else if (k === "class") el.className = v;
        else if (k === "value") el.value = v;
        else if (k === "checked") el.checked = !!v;
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) return child.forEach(function (c) { append(el, c); });
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function show() {
    app.textContent = "";
    for (var i = 0; i < arguments.length; i++) append(app, arguments[i]);
  }

  function logo(d) {
    return h("img", { class: "logo", src: d.logo, alt: "" });
  }

  function chip(text, off) {
    return h("span", { class: off ? "chip off" : "chip" }, text);
  }

  function banner(text, bad) {
    return h("div", { class: bad ? "banner bad" : "banner", role: "status" }, text);
  }

  // ---- API -------------------------------------------------------------

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function api(method, path, body) {
    var init = { method: method, headers: { Authorization: "Bearer " + (token() || "") } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch("/api" + path, init).then(function (r) {
      if (r.status === 401 && path !== "/sources") {
        sessionStorage.removeItem(TOKEN_KEY);
        location.hash = "#/login";
      }
      if (r.status === 204) return null;
      return r.json().then(function (data) {
        if (!r.ok) {
          var err = new Error(data && data.error ? data.error : "request failed (" + r.status + ")");
          err.status = r.status;
          err.field = data && data.field;
          throw err;
        }
        return data;
      });
    });
  }

  function catalog() {
    if (catalogCache) return Promise.resolve(catalogCache);
    return api("GET", "/catalog/destinations").then(function (list) {
      catalogCache = list;
      return list;
    });
  }

  function bySlug(list, slug) {
    return list.filter(function (d) { return d.slug === slug; })[0];
  }

  // ---- Routing ---------------------------------------------------------

  function parseHash() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var q = {};
    var parts = hash.split("?");
    (parts[1] || "").split("&").forEach(function (kv) {
      if (!kv) return;
      var p = kv.split("=");
      q[decodeURIComponent(p[0])] = decodeURIComponent(p.slice(1).join("=") || "");
    });
    return { path: parts[0].split("/").filter(Boolean).map(decodeURIComponent), query: q };
  }

  function link(path, query) {
    var qs = Object.keys(query || {}).filter(function (k) { return query[k]; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(query[k]); }).join("&");
    return "#/" + path.map(encodeURIComponent).join("/") + (qs ? "?" + qs : "");
  }

  function go(path, query) { location.hash = link(path, query); }

  function route() {
    var r = parseHash();
    var p = r.path;
    var nav = p[0] === "sources" ? "sources" : p[0] === "destinations" || p[0] === "connections" ? "destinations"
      : p[0] === "catalog" || p[0] === "configure" ? "catalog" : p[0] ? "" : "home";
    Array.prototype.forEach.call(document.querySelectorAll("#nav a"), function (a) {
      a.classList.toggle("active", a.getAttribute("data-nav") === nav);
    });
    document.getElementById("nav").style.visibility = token() ? "visible" : "hidden";
    if (!token() && p[0] !== "login") return go(["login"]);
    var view;
    if (p[0] === "login") view = loginView();
    else if (!p[0]) view = homeView();
    else if (p[0] === "sources" && p[1]) view = sourceView(p[1], r.query);
    else if (p[0] === "sources") view = sourcesView();
    else if (p[0] === "destinations") view = destinationsView();
    else if (p[0] === "catalog" && p[1]) view = destinationSummaryView(p[1], r.query);
    else if (p[0] === "catalog") view = catalogView(r.query);
    else if (p[0] === "configure" && p[1]) view = configureView(p[1], r.query);
    else if (p[0] === "connections" && p[1]) view = connectionView(p[1], r.query);
    else view = Promise.resolve(show(h("h1", null, "Not found"), h("a", { href: "#/" }, "Back to connections")));
    Promise.resolve(view).catch(function (e) {
      show(h("h1", null, "Something went wrong"), banner(e.message, true), h("a", { href: "#/" }, "Back to connections"));
    });
  }

  window.addEventListener("hashchange", route);
  document.getElementById("logout").addEventListener("click", function () {
    sessionStorage.removeItem(TOKEN_KEY);
    go(["login"]);
  });

  // ---- Views -----------------------------------------------------------

  function loginView() {
    var input = h("input", { type: "password", id: "token", autocomplete: "current-password", autofocus: true });
    var error = h("div", { class: "error", id: "login-error" });
    var form = h("form", { class: "card", onsubmit: function (e) {
      e.preventDefault();
      error.textContent = "";
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      api("GET", "/sources").then(function () { go([]); }, function (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        error.textContent = err.status === 401 ? "That admin token is not valid." : err.message;
      });
    } },
      h("div", { class: "field" }, h("label", { for: "token" }, "Admin token"),
        h("div", { class: "help" }, "Printed by switchyard serve on first start, or the SWITCHYARD_ADMIN_TOKEN you set."),
        input, error),
      h("button", { class: "primary", type: "submit", id: "login" }, "Log in"));
    show(h("h1", null, "Log in to Switchyard"), form);
  }

  function addDestinationButton(id, sourceId) {
    return h("a", { class: "button primary", id: id, href: link(["catalog"], { source: sourceId }) }, "Add destination");
  }

  function recommendedCard(list, sourceId) {
    var picks = list.filter(function (d) { return d.recommended; });
    return h("div", { class: "card", id: "recommended" },
      h("h2", { style: "margin-top:0" }, "Recommended to start"),
      h("p", { class: "muted small" }, "One tool each for analytics, email marketing and live chat: a good first set for a new site."),
      h("div", { class: "tiles" }, picks.map(function (d) { return tile(d, sourceId); })));
  }

  function tile(d, sourceId) {
    return h("a", { class: "tile", "data-slug": d.slug, href: link(["catalog", d.slug], { source: sourceId }) },
      h("div", { class: "row" }, logo(d), h("span", { class: "name" }, d.name)),
      h("div", { class: "small muted" }, d.categories.join(" · ")),
      h("div", null, d.modes.map(function (m) {
        return chip(m.mode + (m.available ? "" : " (soon)"), !m.available);
      })));
  }

  function homeView() {
    return Promise.all([api("GET", "/sources"), catalog()]).then(function (res) {
      var sources = res[0], list = res[1];
      return Promise.all(sources.map(function (s) { return api("GET", "/sources/" + encodeURIComponent(s.id) + "/connections"); }))
        .then(function (conns) {
          show(
            h("div", { class: "row spread" }, h("h1", null, "Connections"), addDestinationButton("add-destination-home")),
            recommendedCard(list),
            sources.map(function (s, i) {
              return h("div", { class: "card source-card" },
                h("div", { class: "row spread" },
                  h("a", { href: link(["sources", s.id]), class: "source-name" }, h("strong", null, s.name)),
                  h("span", { class: "muted small" }, conns[i].length + " destination(s)")),
                conns[i].length ? h("ul", null, conns[i].map(function (c) {
                  return h("li", null, h("a", { href: link(["connections", c.id]) }, c.destination_name),
                    " · " + c.mode + " mode · " + (c.enabled ? "enabled" : "disabled"));
                })) : h("p", { class: "muted small" }, "No destinations yet."));
            }),
            newSourceForm());
        });
    });
  }

  function newSourceForm() {
    var input = h("input", { type: "text", id: "new-source-name", placeholder: "My website" });
    var error = h("div", { class: "error" });
    return h("form", { class: "card", onsubmit: function (e) {
      e.preventDefault();
      error.textContent = "";
      api("POST", "/sources", { name: input.value }).then(function (s) { go(["sources", s.id]); },
        function (err) { error.textContent = err.message; });
    } },
      h("div", { class: "field" }, h("label", { for: "new-source-name" }, "New source"), input, error),
      h("button", { type: "submit", id: "create-source" }, "Create source"));
  }

  function sourcesView() {
    return api("GET", "/sources").then(function (sources) {
      show(h("h1", null, "Sources"),
        h("div", { class: "card" }, h("table", null,
          h("tr", null, h("th", null, "Name"), h("th", null, "Write key"), h("th", null, "Sends"), h("th", null, "Destinations")),
          sources.map(function (s) {
            return h("tr", null, h("td", null, h("a", { href: link(["sources", s.id]) }, s.name)),
              h("td", null, h("code", null, s.write_key)),
              h("td", null, s.methods.length ? s.methods.join(", ") : "nothing yet"),
              h("td", null, String(s.connections)));
          }))),
        newSourceForm());
    });
  }

  function warnings(list) {
    return (list || []).map(function (w) { return h("div", { class: "warning", "data-code": w.code }, w.message); });
  }

  function sourceView(id, query) {
    return Promise.all([api("GET", "/sources/" + encodeURIComponent(id)), api("GET", "/sources/" + encodeURIComponent(id) + "/connections")])
      .then(function (res) {
        var s = res[0], conns = res[1];
        var nameInput = h("input", { type: "text", id: "rename-source", value: s.name });
        var renameError = h("div", { class: "error" });
        show(
          h("div", { class: "row spread" }, h("h1", { id: "source-title" }, s.name), addDestinationButton("add-destination-source", s.id)),
          query.rotated ? banner("A new write key is in place; the old one no longer works.") : null,
          h("div", { class: "card" },
            h("p", null, "Write key ", h("code", { id: "write-key" }, s.write_key)),
            h("p", null, "Revision " + s.revision + " · Sends: ", s.methods.length ? s.methods.map(function (m) { return chip(m); }) : h("span", { class: "muted" }, "nothing yet")),
            h("form", { class: "row", onsubmit: function (e) {
              e.preventDefault();
              renameError.textContent = "";
              api("PATCH", "/sources/" + encodeURIComponent(id), { name: nameInput.value }).then(route, function (err) { renameError.textContent = err.message; });
            } }, h("div", { style: "flex:1" }, nameInput, renameError), h("button", { type: "submit", id: "rename" }, "Rename")),
            h("div", { class: "row", style: "margin-top:.75rem" },
              h("button", { type: "button", id: "rotate-key", onclick: function () {
                if (!confirm("Give this source a new write key? Sites using the old one stop sending.")) return;
                api("POST", "/sources/" + encodeURIComponent(id) + "/rotate-key").then(function () { go(["sources", id], { rotated: "1" }); });
              } }, "Rotate write key"),
              h("button", { type: "button", class: "danger", id: "delete-source", onclick: function () {
                if (!confirm("Delete this source and its connections?")) return;
                api("DELETE", "/sources/" + encodeURIComponent(id)).then(function () { go(["sources"]); });
              } }, "Delete source"))),
          h("h2", null, "Destinations"),
          conns.length ? conns.map(connectionCard) : h("p", { class: "muted" }, "No destinations yet."),
          liveView(s.id));
      });
  }

  // The source's events as they arrive (server-sent events over fetch, so
  // the admin token goes in a header), each with where it goes.
  function liveView(sourceId) {
    var list = h("ol", { id: "live-events", reversed: true });
    var state = h("span", { id: "live-state", class: "muted" }, "connecting…");
    var controller = new AbortController();
    function entry(data) {
      var e = data.event || {};
      var what = e.type === "track" ? e.event : e.type === "page" || e.type === "screen" ? (e.name || e.type) : e.type;
      return h("li", { class: "live-event", "data-message-id": e.messageId },
        h("details", null,
          h("summary", null, h("strong", null, e.type), " ", String(what || ""), " · ", h("span", { class: "muted" }, e.receivedAt || ""), " ",
            (data.routes || []).map(function (r) {
              var label = r.name + (r.decision === "browser" ? " ✓ browser" : r.decision === "server" ? " → server" : " ✗ " + r.reason);
              return h("span", { class: "chip route " + r.decision, "data-destination": r.destination, title: r.reason || r.decision }, label);
            })),
          h("pre", null, JSON.stringify(e, null, 2))));
    }
    fetch("/api/sources/" + encodeURIComponent(sourceId) + "/live", {
      headers: { Authorization: "Bearer " + (token() || "") }, signal: controller.signal
    }).then(function (r) {
      if (!r.ok || !r.body) { state.textContent = "not available (" + r.status + ")"; return; }
      state.textContent = "listening";
      var reader = r.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { state.textContent = "stopped"; return; }
          if (!document.body.contains(list)) { controller.abort(); return; }
          buffer += decoder.decode(chunk.value, { stream: true });
          var messages = buffer.split("\n\n");
          buffer = messages.pop();
          messages.forEach(function (m) {
            var kind = "", data = "";
            m.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) kind = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
            });
            if (kind !== "event" || !data) return;
            list.insertBefore(entry(JSON.parse(data)), list.firstChild);
            while (list.children.length > 50) list.removeChild(list.lastChild);
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () { state.textContent = "stopped"; });
    return h("section", { class: "card", id: "live" },
      h("h2", { style: "margin-top:0" }, "Live events ", state),
      h("p", { class: "muted" }, "Each event as it arrives: which destinations had it in the browser (✓), which the server delivers it to (→), and which do not get it, and why (✗)."),
      list);
  }

  function connectionCard(c) {
    return h("div", { class: "card connection", "data-id": c.id },
      h("div", { class: "row spread" },
        h("a", { href: link(["connections", c.id]) }, h("strong", null, c.destination_name)),
        h("span", { class: "muted" }, c.mode + " mode"),
        enableToggle(c, "toggle-" + c.id)),
      warnings(c.warnings));
  }

  function enableToggle(c, id, after) {
    var input = h("input", { type: "checkbox", id: id, role: "switch", checked: c.enabled });
    var label = h("span", null, c.enabled ? "Enabled" : "Disabled");
    input.addEventListener("change", function () {
      input.disabled = true;
      api("PATCH", "/connections/" + encodeURIComponent(c.id), { enabled: input.checked }).then(function (updated) {
        input.disabled = false;
        label.textContent = updated.enabled ? "Enabled" : "Disabled";
        input.checked = updated.enabled;
        if (after) after(updated);
      }, function (err) {
        input.disabled = false;
        input.checked = !input.checked;
        alert(err.message);
      });
    });
    return h("label", { class: "toggle" }, input, label);
  }

  function destinationsView() {
    return Promise.all([api("GET", "/sources"), catalog()]).then(function (res) {
      var sources = res[0];
      return Promise.all(sources.map(function (s) { return api("GET", "/sources/" + encodeURIComponent(s.id) + "/connections"); }))
        .then(function (conns) {
          var rows = [];
          sources.forEach(function (s, i) {
            conns[i].forEach(function (c) {
              rows.push(h("tr", null, h("td", null, h("a", { href: link(["connections", c.id]) }, c.destination_name)),
                h("td", null, s.name), h("td", null, c.mode), h("td", null, c.enabled ? "enabled" : "disabled"),
                h("td", null, c.warnings.length ? c.warnings.length + " warning(s)" : "")));
            });
          });
          show(
            h("div", { class: "row spread" }, h("h1", null, "Destinations"), addDestinationButton("add-destination-list")),
            h("div", { class: "card" }, rows.length ? h("table", null,
              h("tr", null, h("th", null, "Destination"), h("th", null, "Source"), h("th", null, "Mode"), h("th", null, "State"), h("th", null, "")),
              rows) : h("p", { class: "muted" }, "No destinations connected yet.")));
        });
    });
  }

  function catalogView(query) {
    return catalog().then(function (list) {
      var categories = [];
      list.forEach(function (d) { d.categories.forEach(function (c) { if (categories.indexOf(c) < 0) categories.push(c); }); });
      categories.sort();
      var search = h("input", { type: "search", id: "catalog-search", placeholder: "Search destinations", value: query.q || "" });
      var grid = h("div", { class: "tiles", id: "catalog-tiles" });
      var active = query.category || "";
      var filters = h("div", { class: "row filters" });
      function draw() {
        var q = search.value.trim().toLowerCase();
        grid.textContent = "";
        list.filter(function (d) {
          return (!active || d.categories.indexOf(active) >= 0) &&
            (!q || (d.name + " " + d.slug + " " + d.description + " " + d.categories.join(" ")).toLowerCase().indexOf(q) >= 0);
        }).forEach(function (d) { grid.appendChild(tile(d, query.source)); });
        if (!grid.children.length) grid.appendChild(h("p", { class: "muted" }, "No destination matches."));
        Array.prototype.forEach.call(filters.children, function (b) { b.classList.toggle("on", b.getAttribute("data-category") === active); });
      }
      [""].concat(categories).forEach(function (c) {
        filters.appendChild(h("button", { type: "button", "data-category": c, onclick: function () { active = c; draw(); } }, c || "All"));
      });
      search.addEventListener("input", draw);
      show(h("h1", null, "Add a destination"),
        stepper(2),
        recommendedCard(list, query.source),
        h("div", { class: "card" }, search, h("div", { style: "margin-top:.75rem" }, filters)),
        grid);
      draw();
      search.focus();
    });
  }

  function stepper(now) {
    var names = ["Add destination", "Pick from catalog", "Configure", "Choose source", "Settings", "Enable"];
    return h("div", { class: "steps" }, names.map(function (n, i) {
      return h("span", { class: i + 1 === now ? "now" : "" }, (i + 1) + ". " + n);
    }));
  }

  function compatibility(d, methods) {
    return h("table", { id: "compatibility" },
      h("tr", null, h("th", null, "Mode"), h("th", null, "Available"), h("th", null, "Accepts"), methods ? h("th", null, "Calls this source sends") : null),
      d.modes.map(function (m) {
        return h("tr", { "data-mode": m.mode }, h("td", null, m.mode),
          h("td", null, m.available ? h("span", { class: "yes" }, "yes") : h("span", { class: "no" }, "not yet")),
          h("td", null, m.methods.join(", ")),
          methods ? h("td", null, methods.length ? methods.map(function (x) {
            var ok = m.methods.indexOf(x) >= 0;
            return h("span", { class: ok ? "yes" : "no", "data-method": x }, (ok ? "✓ " : "✗ ") + x + "  ");
          }) : h("span", { class: "muted" }, "nothing sent yet")) : null);
      }));
  }

  function destinationSummaryView(slug, query) {
    return Promise.all([catalog(), api("GET", "/sources")]).then(function (res) {
      var d = bySlug(res[0], slug);
      if (!d) return show(h("h1", null, "No such destination"), h("a", { href: "#/catalog" }, "Back to the catalog"));
      var sources = res[1];
      var source = sources.filter(function (s) { return s.id === query.source; })[0];
      show(
        stepper(3),
        h("div", { class: "row" }, logo(d), h("h1", { style: "margin:0" }, d.name)),
        h("div", { class: "card" },
          h("p", null, d.description),
          h("p", null, d.categories.map(function (c) { return chip(c); })),
          h("p", { class: "small" }, h("a", { href: d.website, rel: "noopener noreferrer", target: "_blank" }, d.website)),
          h("h2", null, source ? "Compatibility with " : "Connection modes", source ? h("span", null, source.name) : null),
          compatibility(d, source ? source.methods : null)),
        h("a", { class: "button primary", id: "configure", href: link(["configure", slug], { source: query.source }) }, "Configure " + d.name));
    });
  }

  function settingField(s, value, editing) {
    var id = "setting-" + s.key;
    var input;
    if (s.type === "boolean") {
      input = h("input", { type: "checkbox", id: id, checked: value === undefined ? !!s.default : !!value });
    } else if (s.type === "select") {
      input = h("select", { id: id }, s.choices.map(function (c) {
        return h("option", { value: c, selected: (value === undefined ? s.default : value) === c }, c);
      }));
    } else if (s.type === "list") {
      var items = value === undefined ? s.default : value;
      input = h("textarea", { id: id, placeholder: "One per line" });
      input.value = Array.isArray(items) ? items.join("\n") : "";
    } else if (s.type === "map") {
      var map = value === undefined ? s.default : value;
      input = h("textarea", { id: id, placeholder: "name=value, one per line" });
      input.value = map && typeof map === "object" ? Object.keys(map).map(function (k) { return k + "=" + map[k]; }).join("\n") : "";
    } else {
      var v = value === undefined ? s.default : value;
      var secretSaved = s.secret && editing && value !== undefined;
      input = h("input", {
        type: s.type === "password" ? "password" : s.type === "number" ? "number" : "text",
        id: id, autocomplete: "off",
        placeholder: secretSaved ? "saved; leave empty to keep" : "",
      });
      input.value = secretSaved || v === undefined || v === null ? "" : String(v);
    }
    var error = h("div", { class: "error", id: "error-" + s.key });
    return h("div", { class: "field", "data-key": s.key },
      h("label", { for: id }, s.label, s.required ? h("span", { class: "req", title: "required" }, "*") : null,
        s.secret ? h("span", { class: "chip off" }, "secret") : null),
      s.help ? h("div", { class: "help" }, s.help) : null,
      input, error);
  }

  function readSetting(s, form) {
    var input = form.querySelector("#setting-" + cssEscape(s.key));
    if (!input) return undefined;
    if (s.type === "boolean") return input.checked;
    if (s.type === "select") return input.value;
    if (s.type === "list") return input.value.split("\n").map(function (x) { return x.trim(); }).filter(Boolean);
    if (s.type === "map") {
      var out = {};
      input.value.split("\n").forEach(function (line) {
        var i = line.indexOf("=");
        if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      });
      return out;
    }
    var v = input.value.trim();
    if (v === "") return undefined;
    if (s.type === "number") return Number(v);
    return v;
  }

  function cssEscape(s) { return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/[^a-zA-Z0-9_-]/g, "\\$&"); }

  function showErrors(form, errors) {
    Array.prototype.forEach.call(form.querySelectorAll(".field"), function (f) {
      var key = f.getAttribute("data-key");
      var msg = errors[key] || "";
      f.classList.toggle("invalid", !!msg);
      var e = f.querySelector(".error");
      if (e) e.textContent = msg;
    });
  }

  function settingsFor(d, mode) {
    return d.settings.filter(function (s) { return !s.modes || !s.modes.length || s.modes.indexOf(mode) >= 0; });
  }

  // Validates what can be checked here (required fields), then the API does
  // the rest; its 422 names the field, shown beside it.
  function collect(form, settings, editing) {
    var values = {}, errors = {}, any = false;
    settings.forEach(function (s) {
      var v = readSetting(s, form);
      if (v === undefined && s.required && !(editing && s.secret && editing[s.key] !== undefined)) {
        errors[s.key] = s.label + " is required.";
        any = true;
      }
      if (v !== undefined) values[s.key] = v;
    });
    showErrors(form, errors);
    return any ? null : values;
  }

  function apiErrorInto(form, err, formError) {
    var key = err.field && err.field.indexOf("settings.") === 0 ? err.field.slice(9) : null;
    if (key && form.querySelector('.field[data-key="' + cssEscape(key) + '"]')) {
      var errors = {};
      errors[key] = err.message;
      showErrors(form, errors);
    } else {
      formError.textContent = err.message;
    }
  }

  function configureView(slug, query) {
    return Promise.all([catalog(), api("GET", "/sources")]).then(function (res) {
      var d = bySlug(res[0], slug);
      var sources = res[1];
      if (!d) return show(h("h1", null, "No such destination"));
      var chosen = { source: query.source || (sources[0] && sources[0].id), mode: d.modes[0].mode };
      var sourceSelect = h("select", { id: "source-select" }, sources.map(function (s) {
        return h("option", { value: s.id, selected: s.id === chosen.source }, s.name);
      }));
      var modes = h("div", { id: "mode-choice" }, d.modes.map(function (m, i) {
        return h("label", { style: "font-weight:normal" },
          h("input", { type: "radio", name: "mode", value: m.mode, checked: i === 0 }), " " + m.mode + " mode",
          m.available ? null : h("span", { class: "muted small" }, " (not available yet: events are not delivered until it lands)"));
      }));
      var compat = h("div");
      function drawCompat() {
        var s = sources.filter(function (x) { return x.id === sourceSelect.value; })[0];
        compat.textContent = "";
        if (s) compat.appendChild(compatibility(d, s.methods));
      }
      sourceSelect.addEventListener("change", drawCompat);
      if (!sources.length) {
        return show(stepper(4), h("h1", null, "Configure " + d.name), h("p", null, "Create a source first."), newSourceForm());
      }
      show(
        stepper(4),
        h("div", { class: "row" }, logo(d), h("h1", { style: "margin:0" }, "Configure " + d.name)),
        h("div", { class: "card" },
          h("div", { class: "field" }, h("label", { for: "source-select" }, "Which source sends data to " + d.name + "?"), sourceSelect),
          h("div", { class: "field" }, h("label", null, "Connection mode"), modes),
          compat,
          h("button", { type: "button", class: "primary", id: "confirm-source", onclick: function () {
            chosen.source = sourceSelect.value;
            var checked = modes.querySelector("input:checked");
            chosen.mode = checked ? checked.value : d.modes[0].mode;
            settingsStep(d, chosen, sources);
          } }, "Confirm")));
      drawCompat();
    });
  }

  function settingsStep(d, chosen, sources) {
    var source = sources.filter(function (s) { return s.id === chosen.source; })[0];
    var settings = settingsFor(d, chosen.mode);
    var formError = h("div", { class: "error", id: "form-error" });
    var form = h("form", { class: "card", id: "settings-form", novalidate: true, onsubmit: function (e) {
      e.preventDefault();
      formError.textContent = "";
      var values = collect(form, settings);
      if (!values) return;
      api("POST", "/sources/" + encodeURIComponent(chosen.source) + "/connections",
        { destination: d.slug, mode: chosen.mode, settings: values, enabled: false })
        .then(function (c) { go(["connections", c.id], { created: "1" }); }, function (err) { apiErrorInto(form, err, formError); });
    } },
      settings.length ? settings.map(function (s) { return settingField(s); }) : h("p", { class: "muted" }, "No settings needed."),
      formError,
      h("button", { type: "submit", class: "primary", id: "save-settings" }, "Save connection"));
    show(
      stepper(5),
      h("div", { class: "row" }, logo(d), h("h1", { style: "margin:0" }, d.name + " settings")),
      h("p", { class: "muted" }, "Sending from " + (source ? source.name : "") + " in " + chosen.mode + " mode. Fields marked * are required."),
      form);
  }

  function connectionView(id, query) {
    return Promise.all([api("GET", "/connections/" + encodeURIComponent(id)), catalog()]).then(function (res) {
      var c = res[0], d = bySlug(res[1], c.destination);
      return api("GET", "/sources/" + encodeURIComponent(c.source_id)).then(function (source) {
        var settings = d ? settingsFor(d, c.mode) : [];
        var formError = h("div", { class: "error", id: "form-error" });
        var saved = h("div", { id: "saved" });
        var warningBox = h("div", { id: "warnings" }, warnings(c.warnings));
        var form = h("form", { class: "card", id: "settings-form", novalidate: true, onsubmit: function (e) {
          e.preventDefault();
          formError.textContent = "";
          saved.textContent = "";
          var values = collect(form, settings, c.settings);
          if (!values) return;
          api("PATCH", "/connections/" + encodeURIComponent(id), { settings: values }).then(function (u) {
            c = u;
            saved.appendChild(banner("Settings saved."));
            warningBox.textContent = "";
            append(warningBox, warnings(u.warnings));
          }, function (err) { apiErrorInto(form, err, formError); });
        } },
          h("h2", { style: "margin-top:0" }, "Settings"),
          settings.map(function (s) { return settingField(s, c.settings[s.key], c.settings); }),
          formError,
          h("div", { class: "row" },
            h("button", { type: "submit", id: "update-settings" }, "Save changes"),
            h("button", { type: "button", class: "danger", id: "remove-connection", onclick: function () {
              if (!confirm("Remove " + c.destination_name + " from " + source.name + "?")) return;
              api("DELETE", "/connections/" + encodeURIComponent(id)).then(function () { go(["sources", c.source_id]); });
            } }, "Remove")));
        show(
          query.created ? stepper(6) : null,
          query.created ? banner(c.destination_name + " is connected to " + source.name + ". Switch it on when you are ready.") : null,
          h("div", { class: "row spread" },
            h("div", { class: "row" }, d ? logo(d) : null, h("h1", { style: "margin:0" }, c.destination_name)),
            enableToggle(c, "enable-toggle", function (u) {
              warningBox.textContent = "";
              append(warningBox, warnings(u.warnings));
            })),
          h("p", { class: "muted" }, "From ", h("a", { href: link(["sources", source.id]) }, source.name), " · " + c.mode + " mode"),
          warningBox,
          saved,
          form,
          c.mode === "cloud" ? deliveryPanel(c) : null);
      });
    });
  }

  // ---- Cloud delivery ----------------------------------------------------

  function svg(tag, attrs) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    for (var i = 2; i < arguments.length; i++) if (arguments[i]) el.appendChild(arguments[i]);
    return el;
  }

  // Delivered (bars up) and failed (bars down) per minute over the hour.
  function chart(points) {
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p.delivered, p.failed); });
    var w = 6, gap = 2, half = 50;
    var root = svg("svg", { id: "delivery-chart", viewBox: "0 0 " + points.length * (w + gap) + " " + (2 * half + 2),
      width: "100%", height: "120", preserveAspectRatio: "none", role: "img", "aria-label": "Delivered and failed events per minute, last hour" });
    points.forEach(function (p, i) {
      var x = i * (w + gap), up = Math.round(p.delivered / max * half), down = Math.round(p.failed / max * half);
      var title = p.minute + ": " + p.delivered + " delivered, " + p.failed + " failed";
      if (up) root.appendChild(svg("rect", { x: x, y: half - up, width: w, height: up, class: "bar-ok" }, svg("title", {}, document.createTextNode(title))));
      if (down) root.appendChild(svg("rect", { x: x, y: half + 2, width: w, height: down, class: "bar-bad" }, svg("title", {}, document.createTextNode(title))));
    });
    root.appendChild(svg("line", { x1: 0, y1: half + 1, x2: points.length * (w + gap), y2: half + 1, class: "axis" }));
    return root;
  }

  function totalsRows(o) {
    function filtered(t) {
      var reasons = Object.keys(t.filtered);
      var n = reasons.reduce(function (a, r) { return a + t.filtered[r]; }, 0);
      return n + (reasons.length ? " (" + reasons.map(function (r) { return r + " " + t.filtered[r]; }).join(", ") + ")" : "");
    }
    function ms(v) { return v === null || v === undefined ? "–" : "≤ " + v + " ms"; }
    var rows = [
      ["Received", function (t) { return t.received; }],
      ["Delivered", function (t) { return t.delivered; }],
      ["Filtered", filtered],
      ["Dead-lettered", function (t) { return t.dead_lettered; }],
      ["Failed attempts", function (t) { return t.failed_attempts; }],
      ["Latency p50", function (t) { return ms(t.latency_p50_ms); }],
      ["Latency p99", function (t) { return ms(t.latency_p99_ms); }]
    ];
    return h("table", { id: "delivery-totals" },
      h("thead", null, h("tr", null, h("th", null, ""), h("th", null, "Last hour"), h("th", null, "Last day"))),
      h("tbody", null, rows.map(function (r) {
        return h("tr", { "data-row": r[0] }, h("th", null, r[0]), h("td", null, String(r[1](o.last_hour))), h("td", null, String(r[1](o.last_day))));
      })));
  }

  function exchange(x) {
    return h("div", { class: "exchange" },
      h("p", null, h("strong", null, x.outcome)),
      h("pre", { class: "request" }, x.request),
      x.response ? h("pre", { class: "response" }, x.response) : null);
  }

  function deliveryPanel(c) {
    var base = "/connections/" + encodeURIComponent(c.id);
    var overviewBox = h("div", { id: "delivery-overview" }, "Loading…");
    var failuresBox = h("div", { id: "failures" });
    var deadBox = h("div", { id: "dead-letters" });
    var testBox = h("div", { id: "test-result" });
    var replayBox = h("div", { id: "replay-progress" });
    var notice = h("div", { id: "delivery-notice" });

    function refresh() {
      return Promise.all([api("GET", base + "/delivery"), api("GET", base + "/failures"), api("GET", base + "/dead-letters")]).then(function (res) {
        var o = res[0], failures = res[1], dead = res[2];
        overviewBox.textContent = "";
        append(overviewBox, [
          h("p", null, o.running ? chip("delivering") : chip("stopped", true),
            " Retrying now: ", h("span", { id: "retrying" }, String(o.retrying)),
            o.set_aside ? " (" + o.set_aside + " set aside, retried on their own)" : "",
            " · Behind: ", h("span", { id: "lag" }, String(o.lag)), " events",
            " · Dead letters: ", h("span", { id: "dead-count" }, String(o.dead_letters))),
          totalsRows(o),
          chart(o.chart)]);
        failuresBox.textContent = "";
        append(failuresBox, [h("h3", null, "Recent failures"), failures.length ? failures.map(function (f) {
          return h("details", { class: "failure" },
            h("summary", null, f.at + " · " + f.outcome.replace("_", " ") + " · " + f.reason),
            h("pre", { class: "request" }, f.request),
            f.response ? h("pre", { class: "response" }, f.response) : null);
        }) : h("p", { class: "muted" }, "None.")]);
        deadBox.textContent = "";
        append(deadBox, [h("h3", null, "Dead letters (" + dead.count + ")"),
          dead.count ? h("div", { class: "row" },
            h("button", { type: "button", id: "retry-all", onclick: function () { act("retry", null); } }, "Retry all"),
            h("button", { type: "button", class: "danger", id: "discard-all", onclick: function () {
              if (confirm("Discard all " + dead.count + " dead letters?")) act("discard", null);
            } }, "Discard all")) : h("p", { class: "muted" }, "None."),
          h("ul", null, dead.dead_letters.map(function (d) {
            return h("li", { class: "dead-letter", "data-id": d.id },
              h("details", null, h("summary", null, d.failed_at + " · " + d.message_id + " · " + d.reason),
                d.request ? h("pre", { class: "request" }, d.request) : null,
                d.response ? h("pre", { class: "response" }, d.response) : null,
                h("pre", null, JSON.stringify(d.event, null, 2))),
              h("button", { type: "button", class: "retry-one", onclick: function () { act("retry", [d.id]); } }, "Retry"),
              h("button", { type: "button", class: "discard-one", onclick: function () { act("discard", [d.id]); } }, "Discard"));
          }))]);
      }, function (err) { overviewBox.textContent = err.message; });
    }

    function act(what, ids) {
      api("POST", base + "/dead-letters/" + what, ids ? { ids: ids } : {}).then(function (r) {
        notice.textContent = "";
        notice.appendChild(banner(what === "retry" ? "Retrying " + r.retrying + " dead letter(s)." : "Discarded " + r.discarded + "."));
        setTimeout(refresh, 500);
      }, function (err) { notice.textContent = ""; notice.appendChild(banner(err.message, true)); });
    }

    var from = h("input", { type: "datetime-local", id: "replay-from", required: true, step: 1 });
    var to = h("input", { type: "datetime-local", id: "replay-to", step: 1 });
    function iso(input) { return input.value ? new Date(input.value).toISOString() : undefined; }
    function follow(id) {
      api("GET", base + "/replays").then(function (list) {
        var r = list.filter(function (x) { return x.id === id; })[0];
        if (!r) return;
        replayBox.textContent = (r.done ? "Replay done: " : "Replaying: ") + r.read + " read, " + r.delivered + " delivered, " +
          r.filtered + " filtered, " + r.dead_lettered + " dead-lettered" + (r.error ? " (" + r.error + ")" : "");
        if (!r.done) setTimeout(function () { follow(id); }, 1000); else refresh();
      });
    }

    var timer = setInterval(function () {
      if (!document.body.contains(overviewBox)) return clearInterval(timer);
      refresh();
    }, 5000);
    refresh();

    return h("section", { class: "card", id: "delivery" },
      h("h2", { style: "margin-top:0" }, "Delivery"),
      notice,
      overviewBox,
      h("div", { class: "row" },
        h("button", { type: "button", id: "send-test", onclick: function () {
          testBox.textContent = "Sending…";
          api("POST", base + "/test", {}).then(function (r) {
            testBox.textContent = "";
            append(testBox, r.skipped ? h("p", null, "Not sent: " + r.skipped) : r.exchanges.map(exchange));
          }, function (err) { testBox.textContent = err.message; });
        } }, "Send a test event"),
        h("button", { type: "button", id: "refresh-delivery", onclick: refresh }, "Refresh")),
      testBox,
      failuresBox,
      deadBox,
      h("h3", null, "Replay"),
      h("form", { class: "row", id: "replay-form", onsubmit: function (e) {
        e.preventDefault();
        api("POST", base + "/replays", { from: iso(from), to: iso(to) }).then(function (r) {
          replayBox.textContent = "Replay started.";
          follow(r.id);
        }, function (err) { replayBox.textContent = err.message; });
      } },
        h("label", null, "From ", from), h("label", null, "To ", to),
        h("button", { type: "submit", id: "start-replay" }, "Re-send this range")),
      replayBox);
  }

  route();
})();
