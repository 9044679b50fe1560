// Alert rule form: show the thresholds the chosen condition needs and the chosen target's picker.
// Without this script every field shows, and the server says which ones a condition needs.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-alert-rule]");
  if (!form) return;
  const condition = form.querySelector("select[name=condition]");
  const target = form.querySelector("select[name=target]");
  const sync = () => {
    form.querySelectorAll("[data-when]").forEach((el) => {
      el.style.display = el.dataset.when.split(" ").includes(condition.value) ? "" : "none";
    });
    form.querySelectorAll("[data-target]").forEach((el) => {
      el.style.display = el.dataset.target === target.value ? "" : "none";
    });
  };
  condition.addEventListener("change", sync);
  target.addEventListener("change", sync);
  sync();
});
