// cronjobs dashboard: progressive enhancement only; every page works without this script.
"use strict";

const FETCH_HEADER = { "x-dashboard-fetch": "1" };

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function fetchText(url, options) {
  const response = await fetch(url, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    window.location.assign("/dashboard/sign-in?next=" + encodeURIComponent(window.location.pathname));
    throw new Error("signed out");
  }
  return { ok: response.ok, status: response.status, text: await response.text() };
}

// Overview: reload the figures every few seconds; the button pauses and resumes.
function setUpAutoRefresh() {
  const box = document.querySelector("[data-refresh-url]");
  if (!box) return;
  const target = document.getElementById(box.dataset.refreshTarget);
  const button = document.getElementById("refresh-toggle");
  const period = 1000 * Number(box.dataset.refreshSeconds || 5);
  let paused = false;
  button.hidden = false;
  button.addEventListener("click", () => {
    paused = !paused;
    button.setAttribute("aria-pressed", String(paused));
    button.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
  });
  setInterval(async () => {
    if (paused || document.hidden) return;
    try {
      const result = await fetchText(box.dataset.refreshUrl, { headers: FETCH_HEADER });
      // Server-rendered, escaped HTML; dropped if the admin paused while it was on its way.
      if (result.ok && !paused) target.innerHTML = result.text;
    } catch (error) {
      /* a missed refresh is retried at the next tick */
    }
  }, period);
}

// Run now: post the form in the background, then show the new run without reloading the page.
function setUpFetchForms() {
  for (const form of document.querySelectorAll("form[data-fetch-form]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = document.getElementById("live-message");
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const result = await fetchText(form.action, {
          method: "POST",
          headers: { ...FETCH_HEADER, "x-csrftoken": csrfToken() },
          body: new URLSearchParams(new FormData(form)),
        });
        message.textContent = result.text;
        message.className = result.ok ? "notice" : "error";
        message.setAttribute("role", result.ok ? "status" : "alert");
        message.hidden = false;
        if (result.ok && form.dataset.runsUrl) {
          const runs = await fetchText(form.dataset.runsUrl, { headers: FETCH_HEADER });
          if (runs.ok) document.getElementById("runs-container").innerHTML = runs.text;
        }
      } catch (error) {
        message.textContent = "The request failed: " + error.message;
        message.className = "error";
        message.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpAutoRefresh();
  setUpFetchForms();
});
