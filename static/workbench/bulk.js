// The queue's bulk bar: show the fields the chosen action needs, and close the preview panel.
(function () {
  "use strict";

  // <input data-show-for="send_back override">: shown only while one of these actions is chosen.
  function sync(form) {
    var action = form.querySelector("select[name=action]");
    if (!action) return;
    form.querySelectorAll("[data-show-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-for").split(" ").indexOf(action.value) < 0;
    });
  }

  document.addEventListener("change", function (evt) {
    if (evt.target.matches && evt.target.matches("select[name=action]") && evt.target.form) sync(evt.target.form);
  });

  // <button data-clear="#bulk-preview">: empties that panel (Cancel, Close).
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-clear]");
    if (!button) return;
    var panel = document.querySelector(button.getAttribute("data-clear"));
    if (panel) { panel.replaceChildren(); panel.className = ""; }
  });

  // Enter in the reason field previews the bulk action (the form's first button is the quick assign).
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Enter" || !evt.target.matches || !evt.target.matches("form#bulk input[name=reason]")) return;
    var preview = evt.target.form.querySelector("[data-testid=bulk-preview-button]");
    if (preview) { evt.preventDefault(); preview.click(); }
  });

  function init() { document.querySelectorAll("form#bulk").forEach(sync); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
