// Integrators' page only: send a sample without reloading the page. Without JavaScript the
// same forms post normally and the server renders the same result.
"use strict";

(function () {
  var region = document.getElementById("result-region");
  if (!region || !window.fetch) {
    return;
  }
  var forms = document.querySelectorAll("form.send-form");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      body.set("partial", "1");
      var button = form.querySelector("button");
      if (button) {
        button.disabled = true;
      }
      fetch(form.getAttribute("action").split("#")[0], {
        method: "POST",
        body: body,
        headers: { "Accept": "text/html" },
        credentials: "same-origin"
      })
        .then(function (response) {
          return response.text();
        })
        .then(function (html) {
          region.innerHTML = html;
          var result = document.getElementById("result");
          if (result) {
            result.focus();
          }
        })
        .catch(function () {
          form.submit();
        })
        .finally(function () {
          if (button) {
            button.disabled = false;
          }
        });
    });
  });
})();
