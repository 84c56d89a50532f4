/* Web chat client for the Thai citizen-service assistant.
 * Vanilla JS, no build step. Never uses innerHTML for user or bot text:
 * everything is built with DOM APIs and textContent.
 */
(function () {
  "use strict";

  var API_URL = "/api/chat";
  var REQUEST_TIMEOUT_MS = 60000;
  var FALLBACK_ERROR = "ขออภัย ระบบขัดข้องชั่วคราว กรุณาลองใหม่อีกครั้ง หรือโทร 1111";
  var EMPTY_REPLY = "ขออภัย ยังไม่มีคำตอบสำหรับคำถามนี้ กรุณาลองถามด้วยคำอื่นอีกครั้ง";

  var log = document.getElementById("log");
  var scroller = document.getElementById("scroller");
  var typing = document.getElementById("typing");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var sendBtn = document.getElementById("send");
  var suggestions = document.getElementById("suggestions");

  var busy = false;
  var hadReply = false;
  var coarsePointer = !!(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);

  /* Who is speaking is decided by the gateway (an HttpOnly session cookie), never here. */

  /* ---------- safe text rendering ---------- */

  /* Thai letters may be part of a URL (sources are shown as readable IRIs); a URL ends at whitespace. */
  var URL_RE = /https?:\/\/[^\s<>"']+/g;
  var TRAILING_PUNCT_RE = /[.,;:!?)\]}'"…]+$/;

  /* Append `text` to `parent` as text nodes, turning http(s) URLs into links. */
  function appendLinkified(parent, text) {
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      var raw = match[0];
      var trimmed = raw.replace(TRAILING_PUNCT_RE, "");
      // keep a closing parenthesis that belongs to the URL, e.g. ...wiki/Foo_(bar)
      if (raw.charAt(trimmed.length) === ")" && trimmed.indexOf("(") !== -1) {
        trimmed += ")";
      }
      var parsed = null;
      try { parsed = new URL(trimmed); } catch (e) { parsed = null; }
      if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || !parsed.hostname) {
        continue; // leave it as plain text
      }
      if (match.index > last) {
        parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      var a = document.createElement("a");
      a.href = parsed.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = trimmed;
      parent.appendChild(a);
      last = match.index + trimmed.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  /* ---------- message building ---------- */

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  /* Show the start of a (possibly long) reply, or the very bottom if it all fits. */
  function revealFrom(el) {
    var max = scroller.scrollHeight - scroller.clientHeight;
    var target = Math.min(max, el.offsetTop - 12);
    scroller.scrollTop = Math.max(0, target);
  }

  function addUserMessage(text) {
    var el = document.createElement("div");
    el.className = "msg user";
    el.textContent = text;
    log.appendChild(el);
    scrollToBottom();
    return el;
  }

  function makeChip(button) {
    var title = typeof button.title === "string" && button.title ? button.title : String(button.payload || "");
    var payload = typeof button.payload === "string" && button.payload ? button.payload : title;
    var chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.textContent = title;
    chip.setAttribute("data-live", "1");
    chip.addEventListener("click", function () {
      if (chip.disabled || busy) return;
      send(payload, title, { fromChip: true });
    });
    return chip;
  }

  function addBotMessage(message, extraClass) {
    var el = document.createElement("div");
    el.className = "msg bot" + (extraClass ? " " + extraClass : "");
    var textEl = document.createElement("div");
    textEl.className = "text";
    var text = message && typeof message.text === "string" ? message.text : "";
    if (text) appendLinkified(textEl, text);
    el.appendChild(textEl);

    var buttons = message && Array.isArray(message.buttons) ? message.buttons : [];
    var valid = buttons.filter(function (b) { return b && (b.title || b.payload); });
    if (valid.length) {
      var group = document.createElement("div");
      group.className = "chips";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "ตัวเลือกตอบกลับ");
      valid.forEach(function (b) { group.appendChild(makeChip(b)); });
      el.appendChild(group);
    }
    if (!text && valid.length) el.classList.add("buttons-only");
    log.appendChild(el);
    return el;
  }

  /* ---------- chip state ---------- */

  /* While a request is in flight no chip can be clicked. */
  function pauseChips() {
    var chips = document.querySelectorAll(".chip[data-live]");
    for (var i = 0; i < chips.length; i++) chips[i].disabled = true;
  }

  /* After an error, the chips that were usable before become usable again. */
  function resumeChips() {
    var chips = document.querySelectorAll(".chip[data-live]");
    for (var i = 0; i < chips.length; i++) chips[i].disabled = false;
  }

  /* A newer message arrived: chips of older messages are retired for good. */
  function retireChips() {
    var chips = document.querySelectorAll(".chip[data-live]");
    for (var i = 0; i < chips.length; i++) {
      chips[i].disabled = true;
      chips[i].removeAttribute("data-live");
    }
  }

  /* ---------- busy state ---------- */

  function setBusy(on) {
    busy = on;
    typing.hidden = !on;
    sendBtn.disabled = on;
    log.setAttribute("aria-busy", on ? "true" : "false");
    if (on) {
      pauseChips();
      scrollToBottom();
    }
  }

  function focusInputIfLost() {
    var active = document.activeElement;
    if (!active || active === document.body || active.disabled) {
      if (coarsePointer) {
        log.focus({ preventScroll: true }); // don't pop up the on-screen keyboard
      } else {
        input.focus({ preventScroll: true });
      }
    }
  }

  /* ---------- networking ---------- */

  function errorDetail(response) {
    return response.json().then(function (body) {
      if (body && typeof body.detail === "string" && body.detail.trim()) return body.detail;
      return FALLBACK_ERROR;
    }, function () {
      return FALLBACK_ERROR;
    });
  }

  function postMessage(message) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    return fetch(API_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ message: message }),
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok) {
        return errorDetail(response).then(function (detail) { throw { userMessage: detail }; });
      }
      return response.json().catch(function () { throw { userMessage: FALLBACK_ERROR }; });
    }).finally(function () {
      if (timer) clearTimeout(timer);
    });
  }

  /* message: what the bot receives; display: what the user's bubble shows. */
  function send(message, display, opts) {
    opts = opts || {};
    if (busy) return;
    message = String(message || "").trim();
    if (!message) return;

    if (suggestions) {
      // starter suggestions belong to the start of the conversation only
      var starters = suggestions.querySelectorAll(".chip");
      for (var i = 0; i < starters.length; i++) starters[i].disabled = true;
    }

    var bubble = addUserMessage(display || message);
    if (!opts.fromChip) input.value = "";
    setBusy(true);

    postMessage(message).then(function (data) {
      var messages = data && Array.isArray(data.messages) ? data.messages : [];
      messages = messages.filter(function (m) {
        return m && ((typeof m.text === "string" && m.text.trim()) || (Array.isArray(m.buttons) && m.buttons.length));
      });
      hadReply = true;
      retireChips();
      var first = null;
      if (!messages.length) {
        first = addBotMessage({ text: EMPTY_REPLY }, "empty");
      } else {
        messages.forEach(function (m) {
          var el = addBotMessage(m);
          if (!first) first = el;
        });
      }
      setBusy(false);
      revealFrom(first);
    }).catch(function (err) {
      var text = err && err.userMessage ? err.userMessage : FALLBACK_ERROR;
      bubble.classList.add("failed");
      addBotMessage({ text: text }, "error");
      // never lose what the citizen typed
      if (!opts.fromChip && !input.value) input.value = message;
      setBusy(false);
      resumeChips();
      if (!hadReply && suggestions) {
        var starters = suggestions.querySelectorAll(".chip");
        for (var i = 0; i < starters.length; i++) starters[i].disabled = false;
      }
      scrollToBottom();
    }).then(function () {
      focusInputIfLost();
    });
  }

  /* ---------- wiring ---------- */

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(input.value);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey) return;
    event.preventDefault(); // handle Enter ourselves (also while the send button is disabled)
    if (event.isComposing || event.keyCode === 229) return; // IME still composing
    send(input.value);
  });

  if (suggestions) {
    suggestions.addEventListener("click", function (event) {
      var chip = event.target.closest ? event.target.closest(".chip") : null;
      if (!chip || chip.disabled) return;
      send(chip.textContent, chip.textContent, { fromChip: true });
    });
  }

  if (!coarsePointer) input.focus({ preventScroll: true });
})();
