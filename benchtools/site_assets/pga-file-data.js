/* Copied by benchtools/site.py (from site_assets/): lets the site open from disk (file://), where browsers
   refuse XMLHttpRequest. Every data file X.json has a twin X.json.js that hands its text
   to __pgaData(); on file:// jQuery's JSON requests load the twin with a script tag
   (scripts load from disk where XMLHttpRequest may not). Over http nothing changes. */
(function ($) {
  "use strict";
  if (window.location.protocol !== "file:") { return; }
  var waiting = {};
  window.__pgaData = function (path, text) {
    var callbacks = waiting[path] || [];
    delete waiting[path];
    for (var i = 0; i < callbacks.length; i++) { callbacks[i](text); }
  };
  $.ajaxTransport("json", function (options) {
    var path = decodeURIComponent(options.url.split("?")[0].split("#")[0]);
    if (path.indexOf("./") === 0) { path = path.slice(2); }
    var script = null;
    return {
      send: function (headers, complete) {
        (waiting[path] = waiting[path] || []).push(function (text) {
          complete(200, "success", {text: text});
        });
        script = document.createElement("script");
        script.src = encodeURI(path) + ".js";
        script.onload = function () { script.parentNode.removeChild(script); };
        script.onerror = function () {
          script.parentNode.removeChild(script);
          delete waiting[path];
          complete(404, "error");
        };
        document.head.appendChild(script);
      },
      abort: function () {
        if (script) { script.onerror = null; }
        delete waiting[path];
      }
    };
  });
})(jQuery);
