// Crisp's chatbox loader (client.crisp.chat/l.js): reads
// `window.CRISP_WEBSITE_ID` (recorded as `__standin.crispWebsiteId`). Like
// the real loader, which fetches Crisp's client and waits for it, it boots
// the chatbox a moment after its own load event: then it replaces the
// `$crisp` array the snippet set with an object whose `push` records every
// command in `__standin.crisp` (`["set", "user:email", ["a@b.c"]]`,
// `["set", "session:event", [[["Signed Up", {...}]]]]`), with `get` and
// `is` as the real client has them, and replays the commands queued so far.
S.crispWebsiteId = plain(window.CRISP_WEBSITE_ID);
setTimeout(function () {
  var previous = window.$crisp;
  if (previous && previous.__standin === true) return;
  var queued =
    previous && typeof previous.length === 'number' ? Array.prototype.slice.call(previous) : [];
  var values = {};
  var crisp = {
    __standin: true,
    push: function () {
      for (var j = 0; j < arguments.length; j++) {
        var command = arguments[j];
        record('crisp', command);
        if (isArgs(command) && command[0] === 'set') values[command[1]] = command[2];
      }
      return 0;
    },
    get: function (key) {
      return values[key] === undefined ? null : values[key];
    },
    is: function () {
      return false;
    },
  };
  window.$crisp = crisp;
  for (var i = 0; i < queued.length; i++) crisp.push(queued[i]);
}, 50);
