// Drag-and-drop onto the upload form. Without JavaScript the form works as it is (choose, then upload).
(function () {
  "use strict";
  var drop = document.getElementById("drop");
  var input = document.getElementById("file");
  var form = document.getElementById("upload-form");
  if (!drop || !input || !form || !window.DataTransfer) { return; }
  var hint = drop.querySelector(".drop-hint");
  function show() {
    if (hint && input.files && input.files.length) { hint.textContent = "已选择：" + input.files[0].name; }
  }
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    if (!e.dataTransfer || !e.dataTransfer.files.length) { return; }
    var chosen = new DataTransfer();
    chosen.items.add(e.dataTransfer.files[0]);
    input.files = chosen.files;
    show();
  });
  input.addEventListener("change", show);
  form.addEventListener("submit", function () {
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; button.textContent = "正在校验…"; }
  });
})();
