// Shared by every stand-in: mock-api puts this in front of each one, inside
// one function scope that receives the stand-in's name as STANDIN.
//
// Everything a stand-in sees is recorded in `window.__standin`, as plain
// JSON a WebDriver test can read: `window.__standin[key]` is a list of
// calls, each an array of its arguments; `window.__standin.loads` lists
// each stand-in script that ran, with its URL.
var S = (window.__standin = window.__standin || {});

// A value as plain JSON: `arguments` and arrays as arrays, a Date as
// {"$date": ISO string}, a function as "[function]", undefined as null.
function plain(value, depth) {
  depth = depth || 0;
  if (value === undefined) return null;
  if (typeof value === 'function') return '[function]';
  if (typeof value === 'number' && !isFinite(value)) return String(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 32) return '[too deep]';
  if (value instanceof Date) {
    return { $date: isNaN(value.getTime()) ? null : value.toISOString() };
  }
  var tag = Object.prototype.toString.call(value);
  if (Array.isArray(value) || tag === '[object Arguments]') {
    return Array.prototype.map.call(value, function (v) {
      return plain(v, depth + 1);
    });
  }
  var out = {};
  for (var k in value) {
    if (Object.prototype.hasOwnProperty.call(value, k)) {
      out[k] = plain(value[k], depth + 1);
    }
  }
  return out;
}

// Appends one entry (an `arguments` object, an array or a value) to
// `window.__standin[key]`.
function record(key, entry) {
  (S[key] = S[key] || []).push(plain(entry));
}

// Whether this is a call a stub queued as `arguments` (or as an array).
function isArgs(entry) {
  var tag = Object.prototype.toString.call(entry);
  return tag === '[object Arguments]' || Array.isArray(entry);
}

var SCRIPT = document.currentScript;
(S.loads = S.loads || []).push({
  name: STANDIN,
  src: SCRIPT ? SCRIPT.src : null,
});

// A query parameter of this script's own URL.
function param(name) {
  if (!SCRIPT || !SCRIPT.src) return null;
  return new URL(SCRIPT.src).searchParams.get(name);
}
