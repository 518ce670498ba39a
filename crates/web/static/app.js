// Small progressive enhancements; every page works without this file.
document.addEventListener("submit", function (ev) {
  var btn = ev.submitter;
  var msg = btn && btn.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
  }
});
