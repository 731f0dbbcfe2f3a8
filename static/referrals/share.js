/* The portal's share box: copy the link (the Clipboard API, or selecting the field and the older
   copy command where that is missing) and share it (the Web Share API, where the browser has it).
   Without this script the link stays selectable in its field and the buttons stay hidden.
   Texts come from data- attributes, so they are translated with the page. */
(function () {
  "use strict";

  function setup(box) {
    var field = box.querySelector("[data-share-link]");
    var copy = box.querySelector("[data-copy]");
    var share = box.querySelector("[data-share-button]");
    var feedback = box.querySelector("[data-feedback]");
    if (!field) return;

    function say(text, failed) {
      feedback.textContent = text;
      feedback.classList.toggle("is-error", Boolean(failed));
    }

    function copyBySelection() {
      field.focus();
      field.select();
      try {
        return document.execCommand("copy");
      } catch (error) {
        return false;
      }
    }

    if (copy) {
      copy.hidden = false;
      copy.addEventListener("click", function () {
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(
            function () { say(box.dataset.copied, false); },
            function () {
              var done = copyBySelection();
              say(done ? box.dataset.copied : box.dataset.copyFailed, !done);
            }
          );
        } else {
          var done = copyBySelection();
          say(done ? box.dataset.copied : box.dataset.copyFailed, !done);
        }
      });
    }

    if (share && typeof navigator.share === "function") {
      share.hidden = false;
      share.addEventListener("click", function () {
        navigator.share({ title: box.dataset.shareTitle, url: field.value }).catch(function () {
          /* The person closed the share sheet: nothing to say. */
        });
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-share]"), setup);
  });
})();
