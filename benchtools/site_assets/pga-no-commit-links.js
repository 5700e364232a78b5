/* Copied by benchtools/site.py (from site_assets/): this site has no commit URL (no web
   remote), so asv's commit links would be bare hashes (404). Show them as text. */
(function () {
  "use strict";
  var bare = /^[0-9a-f]{7,40}((\.\.\.?)[0-9a-f]{7,40})?$/;
  function strip(root) {
    var links = root.querySelectorAll ? root.querySelectorAll("a[href]") : [];
    for (var i = 0; i < links.length; i++) {
      var href = links[i].getAttribute("href");
      if (href === "" || bare.test(href) || /^\.\.\/compare\//.test(href)) {
        links[i].removeAttribute("href");
      }
    }
  }
  new MutationObserver(function (records) {
    for (var i = 0; i < records.length; i++) {
      var target = records[i].target;
      strip(target.nodeType === 1 ? target : document);
      if (target.nodeType === 1 && target.tagName === "A") { strip(target.parentNode); }
    }
  }).observe(document.documentElement,
             {childList: true, subtree: true, attributes: true, attributeFilter: ["href"]});
  var open = window.open;
  window.open = function (url) {
    if (typeof url === "string" && bare.test(url)) { return null; }
    return open.apply(window, arguments);
  };
})();
