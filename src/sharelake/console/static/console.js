// sharelake console: progressive enhancement only. Every form works without this file;
// with it, destructive forms ask first, secrets get copy buttons, and "Create new app" opens in place.
"use strict";

// A form with data-confirm asks before it is sent (revoking a token, deleting an app).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
}, true);

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain-HTTP pages have no clipboard API: select a scratch field and use the old command.
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.className = "visually-hidden";
  document.body.appendChild(scratch);
  scratch.select();
  const ok = document.execCommand("copy");
  scratch.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) continue;
  button.hidden = false;
  button.addEventListener("click", () => {
    const label = button.textContent;
    copyText(source.textContent.trim()).then(
      () => { button.textContent = "Copied"; },
      () => { button.textContent = "Select and copy by hand"; },
    ).finally(() => setTimeout(() => { button.textContent = label; }, 2000));
  });
}

// "Create new app" reveals its form in place instead of reloading the page with ?new=1.
for (const button of document.querySelectorAll("button[data-reveal]")) {
  const target = document.getElementById(button.dataset.reveal);
  if (!target) continue;
  button.addEventListener("click", (event) => {
    event.preventDefault();
    target.hidden = false;
    const field = target.querySelector("input:not([type=hidden])");
    if (field) field.focus();
  });
}
