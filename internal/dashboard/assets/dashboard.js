// dashboard.js: progressive enhancement of sitehost's dashboard. Every page
// works without it; with it, a building deploy's log streams in, and the
// overview and site pages refresh themselves.
(function () {
  "use strict";

  var REFRESH_MS = 5000;

  // streamLog follows a building deploy's log over Server-Sent Events.
  function streamLog(pre) {
    var source = new EventSource(pre.getAttribute("data-stream"));
    // The stream starts at the beginning of the log, which the page
    // already shows, so its first chunk replaces the text. A reconnect
    // resumes after the last event (Last-Event-ID), so later chunks append.
    var fresh = true;
    pre.scrollTop = pre.scrollHeight;

    source.addEventListener("log", function (e) {
      var text;
      try {
        text = JSON.parse(e.data).text;
      } catch (err) {
        return;
      }
      if (typeof text !== "string") {
        return;
      }
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      if (fresh) {
        pre.textContent = "";
        fresh = false;
      }
      pre.appendChild(document.createTextNode(text));
      if (atBottom) {
        pre.scrollTop = pre.scrollHeight;
      }
    });

    source.addEventListener("end", function (e) {
      source.close();
      var end = {};
      try {
        end = JSON.parse(e.data) || {};
      } catch (err) {
        // Still reload: the page shows the final state either way.
      }
      var badge = document.getElementById("deploy-state");
      if (badge && typeof end.state === "string" && end.state !== "") {
        badge.textContent = end.state;
        badge.className = "badge state-" + end.state.toLowerCase().replace(/[^a-z]/g, "");
      }
      // Reload so the timings, files and errors are complete.
      setTimeout(function () {
        location.reload();
      }, 1000);
    });
  }

  // autoRefresh replaces <main> with a fresh copy every few seconds while
  // the tab is visible.
  function autoRefresh(main) {
    var timer = null;
    var stopped = false;

    function schedule() {
      if (!stopped && timer === null && document.visibilityState === "visible") {
        timer = setTimeout(tick, REFRESH_MS);
      }
    }

    function tick() {
      timer = null;
      fetch(location.href, {
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
        cache: "no-store"
      }).then(function (res) {
        // 401: the session ended; a reload shows the login form, so leave
        // the page as it is and stop asking.
        if (res.status === 401 || res.redirected) {
          stopped = true;
          return null;
        }
        return res.ok ? res.text() : null;
      }).then(function (html) {
        if (html) {
          var next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
          if (next && next.innerHTML !== main.innerHTML) {
            main.innerHTML = next.innerHTML;
          }
        }
      }).catch(function () {
        // The server is restarting or the network is down: try again later.
      }).then(schedule);
    }

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        schedule();
      } else if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
    });
    schedule();
  }

  function init() {
    var log = document.querySelector("#log[data-stream]");
    if (log && window.EventSource) {
      streamLog(log);
    }
    var main = document.querySelector("main[data-refresh]");
    if (main && window.fetch && window.DOMParser) {
      autoRefresh(main);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
