/* Copied by benchtools/site.py (from site_assets/): on the Regressions page, each step
   make bench published gets a one-line reason under its benchmark and a link to its
   evidence page (evidence/*.html, listed in evidence/steps.json by benchtools/evidence.py).
   asv draws the table itself; this only adds to its rows, whenever they are (re)drawn.
   $.pgaSteps() loads the list once for both this and pga-graph.js. */
(function ($) {
  "use strict";
  var steps = null;
  var loading = null;

  $.pgaSteps = function () {
    if (!loading) {
      loading = $.ajax({url: "evidence/steps.json", dataType: "json"}).then(function (data) {
        return data.steps || [];
      });
    }
    return loading;
  };

  function annotate() {
    if (!steps) { return; }
    $("#regressions-body table tbody tr").each(function () {
      var row = $(this);
      if (row.data("pgaEvidence")) { return; }
      var cells = row.children("td");
      var name = cells.eq(0).children("a").first().text();
      var commits = cells.eq(2).text().split("..");
      var commit = $.trim(commits[commits.length - 1]);
      if (!name || !commit) { return; }
      for (var i = 0; i < steps.length; i++) {
        var step = steps[i];
        if (step.name === name && step.commit.indexOf(commit) === 0) {
          var why = $('<div class="pga-why small text-muted"/>').text(step.reason + " ");
          why.append($("<a/>").attr("href", step.page).text("evidence"));
          cells.eq(0).append(why);
          row.data("pgaEvidence", true);
          return;
        }
      }
    });
  }

  $(function () {
    $.pgaSteps().done(function (list) {
      steps = list;
      annotate();
    });
    new MutationObserver(annotate).observe(document.body, {childList: true, subtree: true});
  });
})(jQuery);
