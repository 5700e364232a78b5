/* Copied by benchtools/site.py (from site_assets/): two touches to asv's graphs.
   1. A graph whose values are all equal (an instruction count of unchanged code) gets
      one y tick at that value, not a column of identical labels around it.
   2. The main graph marks the steps make bench published for its benchmark (a red line
      at each step's commit; evidence/steps.json, written by benchtools/evidence.py, as
      pga-step-evidence.js's $.pgaSteps() loads it).
   Both wrap jQuery.plot, which asv calls for every graph it draws. */
(function ($) {
  "use strict";
  var steps = [];

  function flat(options) {
    var y = options && options.yaxis;
    if (!y || y.transform || typeof y.min !== "number" || y.min !== y.max) { return; }
    var v = y.min;
    var pad = v === 0 ? 1 : Math.abs(v) * 0.1;
    y.min = v - pad;
    y.max = v + pad;
    y.ticks = [v];
  }

  function stepMarkings(options) {
    var name = decodeURIComponent(window.location.hash.slice(1).split("?")[0]);
    var main = $.asv && $.asv.main_json;
    if (!name || !main || !main.revision_to_hash) { return; }
    var byHash = {};
    $.each(main.revision_to_hash, function (rev, hash) { byHash[hash] = Number(rev); });
    var dates = options.xaxis && options.xaxis.mode === "time";
    var marks = [];
    $.each(steps, function (i, step) {
      if (step.name.split("(")[0] !== name) { return; }
      var rev = byHash[step.commit];
      if (rev === undefined) { return; }
      var x = dates ? main.revision_to_date[rev] : rev;
      marks.push({xaxis: {from: x, to: x}, color: "#d9534f", lineWidth: 2, pgaStep: step.commit});
    });
    if (!marks.length) { return; }
    options.grid = options.grid || {};
    var kept = $.grep(options.grid.markings || [], function (m) { return !m.pgaStep; });
    options.grid.markings = kept.concat(marks);
  }

  $(function () {
    var load = $.pgaSteps || function () { return $.Deferred().resolve([]); };
    load().done(function (list) {
      steps = list;
      // A graph drawn before the list arrived gets its marks now.
      var drawn = $("#main-graph").data("plot");
      if (drawn && steps.length) {
        var options = drawn.getOptions();
        var before = (options.grid.markings || []).length;
        stepMarkings(options);
        if ((options.grid.markings || []).length !== before) {
          drawn.setupGrid();
          drawn.draw();
        }
      }
    });
    var plot = $.plot;
    if (!plot) { return; }
    var wrapped = function (placeholder, data, options) {
      options = options || {};
      flat(options);
      if ($(placeholder).attr("id") === "main-graph") { stepMarkings(options); }
      return plot.call(this, placeholder, data, options);
    };
    $.extend(wrapped, plot);
    $.plot = wrapped;
  });
})(jQuery);
