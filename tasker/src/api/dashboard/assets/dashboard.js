// tasker dashboard: the live task graph and the dead-letter selection.
// Written for the dashboard (no library); served from the binary.
(function () {
  "use strict";

  // The task page's graph and state, replaced as the server sends them.
  var box = document.getElementById("graph");
  if (box && box.dataset.live && window.EventSource) {
    var source = new EventSource(box.dataset.live);
    source.addEventListener("task", function (e) {
      var data = JSON.parse(e.data);
      box.innerHTML = data.graph;
      box.dataset.state = data.state;
      var state = document.getElementById("task-state");
      if (state) {
        state.innerHTML = data.badge;
      }
      if (data.finished) {
        source.close();
        box.dataset.live = "";
      }
    });
  }

  // "Select all in this group": toggles the group's check boxes.
  document.querySelectorAll("[data-select-all]").forEach(function (button) {
    button.addEventListener("click", function () {
      var boxes = button.closest("form").querySelectorAll("input[type=checkbox]");
      var all = Array.prototype.every.call(boxes, function (c) { return c.checked; });
      boxes.forEach(function (c) { c.checked = !all; });
    });
  });
})();
