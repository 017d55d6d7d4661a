/* The annotate page: keyboard shortcuts, active-time measurement, synchronised scrolling.
 *
 * Loaded with `defer` from a static file (the CSP allows no inline script). DOM contract:
 *   form#label-form       radio groups overall (and helpful, truthful, harmless) valued "1".."5"
 *                         (1 = first shown response clearly better ... 5 = second clearly better),
 *                         confidence, reasons, textarea rationale, hidden input time_spent_s,
 *                         a submit button
 *   form#skip-form        a `reason` select or input, a submit button; may sit in a closed
 *                         <details> or <dialog>, which S opens
 *   .response-panel x2    the first and second response, each its own scroll container
 *   input#sync-scroll     optional checkbox: scroll the two panels together
 *   #keys-help            a <dialog> (or any element with `hidden`) listing the keys;
 *                         [data-open-help] elements open it on click
 * Keys, when focus is not in a text field: 1-5 choose `overall` (or the focused aspect's scale),
 * Enter submits the label form, S opens then submits the skip form, ? shows or hides the help.
 * Everything is bound on `document` once; content swapped in by htmx is picked up on
 * htmx:load / htmx:afterSwap, and a new #label-form starts a new time measurement.
 */
(function () {
  "use strict";

  const IDLE_MS = 60 * 1000;
  const SCALES = new Set(["overall", "helpful", "truthful", "harmless"]);
  // Inputs where keys mean something already (typing, choosing); everything else is fair game.
  const NON_TEXT_INPUTS = new Set([
    "radio", "checkbox", "button", "submit", "reset", "hidden", "range", "color", "file", "image",
  ]);

  function labelForm() {
    return document.getElementById("label-form");
  }

  function isTextField(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName === "INPUT") return !NON_TEXT_INPUTS.has((el.type || "text").toLowerCase());
    return false;
  }

  // ---- Active time ----
  // Time counts while the page is visible and the annotator has done something (key, pointer,
  // wheel, scroll, touch) in the last IDLE_MS; an idle stretch counts up to IDLE_MS after the
  // last activity, since reading a long response without moving is work too.
  const clock = {
    form: null,
    activeMs: 0,
    since: null, // start of the current active stretch, or null while paused
    lastActivity: 0,
  };

  function now() {
    return performance.now();
  }

  function activeUntil(t) {
    return Math.min(t, clock.lastActivity + IDLE_MS);
  }

  function pause(t) {
    if (clock.since !== null) {
      clock.activeMs += Math.max(0, activeUntil(t) - clock.since);
      clock.since = null;
    }
  }

  function activity() {
    const t = now();
    if (clock.since !== null && t - clock.lastActivity >= IDLE_MS) pause(t);
    clock.lastActivity = t;
    if (clock.since === null && !document.hidden) clock.since = t;
  }

  function activeMs() {
    const t = now();
    let total = clock.activeMs;
    if (clock.since !== null) total += Math.max(0, activeUntil(t) - clock.since);
    return total;
  }

  function resetClock(form) {
    clock.form = form;
    clock.activeMs = 0;
    clock.since = null;
    clock.lastActivity = now();
    if (!document.hidden) clock.since = clock.lastActivity;
  }

  function writeTimeSpent(form) {
    const field = form && form.querySelector('input[name="time_spent_s"]');
    if (field) field.value = (activeMs() / 1000).toFixed(1);
  }

  for (const type of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "input"]) {
    document.addEventListener(type, activity, { capture: true, passive: true });
  }
  // Scroll does not bubble; capture sees the panels' own scrolling too.
  document.addEventListener("scroll", activity, { capture: true, passive: true });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) pause(now());
    else activity(); // coming back to the tab is activity
  });

  // Capture on document runs before the form's own listeners (htmx reads the values in its
  // submit handler), and before a plain submission collects them.
  document.addEventListener(
    "submit",
    function (event) {
      const form = event.target;
      if (form && (form.id === "label-form" || form.id === "skip-form")) writeTimeSpent(form);
    },
    true,
  );

  // ---- Keys ----
  function choose(name, value) {
    const form = labelForm();
    const input = form && form.querySelector(
      'input[type="radio"][name="' + name + '"][value="' + value + '"]',
    );
    if (!input || input.disabled) return false;
    if (!input.checked) input.click(); // click: checks it and fires input/change like a user
    input.focus({ preventScroll: true });
    return true;
  }

  function toggleHelp() {
    const help = document.getElementById("keys-help");
    if (!help) return;
    if (typeof help.showModal === "function") {
      if (help.open) help.close();
      else help.showModal();
    } else {
      help.hidden = !help.hidden;
    }
  }

  function helpOpen() {
    const help = document.getElementById("keys-help");
    return Boolean(help && (help.open || (help.tagName !== "DIALOG" && !help.hidden)));
  }

  function firstField(field) {
    // namedItem gives a RadioNodeList for a radio group.
    return field && typeof field.length === "number" && !field.tagName ? field[0] : field;
  }

  function skip() {
    const form = document.getElementById("skip-form");
    if (!form) return;
    const reason = form.elements.namedItem("reason");
    const container = form.closest("details, dialog");
    if (container && !container.open) {
      if (container.tagName === "DIALOG") container.showModal();
      else container.open = true;
      const first = firstField(reason);
      if (first) first.focus();
      return;
    }
    if (reason && !reason.value) {
      const first = firstField(reason);
      if (first) first.focus();
      form.reportValidity();
      return;
    }
    form.requestSubmit();
  }

  function activates(el) {
    // Elements whose own Enter behaviour must be kept.
    return Boolean(el && el.closest && el.closest("button, a[href], summary, [role='button']"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const form = labelForm();
    if (!form) return; // not the annotate page
    const target = event.target;
    if (isTextField(target)) return;

    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (helpOpen()) return; // Escape closes a dialog by itself
    const dialog = target && target.closest ? target.closest("dialog") : null;
    const skipForm = document.getElementById("skip-form");
    if (dialog) {
      // Inside a dialog (the skip form's, say) only S means something: submit that skip form.
      if ((event.key === "s" || event.key === "S") && skipForm && dialog.contains(skipForm)) {
        event.preventDefault();
        skip();
      }
      return;
    }

    if (/^[1-5]$/.test(event.key)) {
      // Digits set the scale that has focus (an aspect), otherwise `overall`.
      const name = target && target.type === "radio" && target.form === form &&
        SCALES.has(target.name) ? target.name : "overall";
      if (choose(name, event.key)) event.preventDefault();
    } else if (event.key === "Enter") {
      if (activates(target)) return;
      if (skipForm && skipForm.contains(target)) return;
      event.preventDefault();
      form.requestSubmit(); // runs validation and fires `submit`, which htmx handles
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      skip();
    }
  });

  // ---- Synchronised scrolling ----
  // Where a panel was put by us: its own scroll event for that position is an echo, not the user.
  const expected = new WeakMap();

  function panels() {
    return Array.from(document.querySelectorAll(".response-panel")).slice(0, 2);
  }

  function syncOn() {
    const box = document.getElementById("sync-scroll");
    return Boolean(box && box.checked);
  }

  function follow(source, other) {
    const range = source.scrollHeight - source.clientHeight;
    const ratio = range > 0 ? source.scrollTop / range : 0;
    const top = Math.round(ratio * Math.max(0, other.scrollHeight - other.clientHeight));
    if (Math.abs(other.scrollTop - top) < 1) return;
    expected.set(other, top);
    other.scrollTop = top;
  }

  function onPanelScroll(event) {
    const source = event.currentTarget;
    const echo = expected.get(source);
    if (echo !== undefined) {
      expected.delete(source);
      if (Math.abs(source.scrollTop - echo) <= 1) return;
    }
    if (!syncOn()) return;
    const pair = panels();
    if (pair.length !== 2 || !pair.includes(source)) return;
    follow(source, pair[0] === source ? pair[1] : pair[0]);
  }

  // A link or button marked data-open-help opens the help (no inline handler: CSP).
  document.addEventListener("click", function (event) {
    const opener = event.target && event.target.closest && event.target.closest("[data-open-help]");
    if (opener && document.getElementById("keys-help")) {
      event.preventDefault();
      toggleHelp();
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "sync-scroll" && event.target.checked) {
      const pair = panels();
      if (pair.length === 2) follow(pair[0], pair[1]); // line the second up with the first
    }
  });

  // ---- (Re-)initialisation ----
  function init() {
    for (const panel of panels()) {
      if (!panel.dataset.syncScrollBound) {
        panel.dataset.syncScrollBound = "1";
        panel.addEventListener("scroll", onPanelScroll, { passive: true });
      }
    }
    const form = labelForm();
    if (form !== clock.form) resetClock(form); // a new comparison: a new measurement
  }

  document.addEventListener("htmx:load", init);
  document.addEventListener("htmx:afterSwap", init);
  document.addEventListener("htmx:historyRestore", init);
  init();

  // For the page's own scripts and for tests.
  window.annotate = {
    activeSeconds: function () {
      return activeMs() / 1000;
    },
    IDLE_MS: IDLE_MS,
  };
})();
