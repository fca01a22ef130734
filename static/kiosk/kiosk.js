// The kiosk (/kiosk/): a tablet at the door. Its camera's frames go to the check-in API
// with the kiosk key kept in this device's local storage. Plain JavaScript: no framework.
//
// While nobody checks in, a frame every IDLE_INTERVAL_MS starts a check-in as soon as
// one face looks at the camera (422 until then). The server asks for a head movement;
// the kiosk shows it and sends frame after frame, one in flight, until the server says
// passed or refused. The result stays on screen for RESULT_MS, then the next person.
(function () {
  "use strict";

  const KEY_STORAGE = "faces.kiosk.key";
  const IDLE_INTERVAL_MS = 500;
  const CHALLENGE_INTERVAL_MS = 80;
  const RESULT_MS = 4000;
  const MAX_SIDE = 640;
  const JPEG_QUALITY = 0.85;
  const REFUSED = "Not recognized — please see reception";
  const DETAILS = {
    wrong_way: "You turned the other way.",
    no_turn: "Please turn your head when asked.",
    too_slow: "Please turn your head when asked.",
    too_few_frames: "Please stay in front of the camera.",
    another_face: "One person at a time, please.",
    not_frontal: "Look straight at the camera first.",
  };

  const root = document.getElementById("kiosk");
  const byId = (id) => document.getElementById(id);
  const video = byId("video");
  const panel = byId("panel");
  const arrow = byId("arrow");
  const message = byId("message");
  const detail = byId("detail");
  const grab = document.createElement("canvas");
  const state = { key: "", run: 0, checkIn: null };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function show(kind, text, more, sign) {
    panel.className = "panel " + kind;
    panel.dataset.state = kind;
    message.textContent = text;
    detail.textContent = more || "";
    arrow.textContent = sign || "";
  }

  function showSetup(error) {
    state.run += 1;
    if (video.srcObject) video.srcObject.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
    byId("door").hidden = true;
    byId("setup").hidden = false;
    byId("setup-error").textContent = error || "";
    byId("kiosk-key").focus();
  }

  function authorized(key) {
    // The key alone, never a session: whoever stands at the kiosk is not signed in.
    return { headers: { Authorization: "Api-Key " + key }, credentials: "omit" };
  }

  function errorText(body) {
    return (body && body.error && body.error.message) || "";
  }

  async function begin(key) {
    const run = ++state.run;
    let response;
    try {
      response = await fetch(root.dataset.infoUrl, authorized(key));
    } catch (error) {
      byId("setup").hidden = true;
      byId("door").hidden = false;
      show("error", "Cannot reach the server", "Retrying…");
      await sleep(5000);
      if (run === state.run) begin(key);
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      if (response.status === 401 || response.status === 403) localStorage.removeItem(KEY_STORAGE);
      showSetup(errorText(body) || `The server answered ${response.status}.`);
      return;
    }
    localStorage.setItem(KEY_STORAGE, key);
    state.key = key;
    byId("place").textContent = `${body.organization} · ${body.camera.name}`;
    byId("setup").hidden = true;
    byId("door").hidden = false;
    show("idle", "Starting the camera…");
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
      });
      await video.play().catch(() => {});
    } catch (error) {
      show("error", "The camera could not be opened", (error && error.name) === "NotAllowedError"
        ? "Allow this page to use the camera in the browser's site settings, then reload."
        : String((error && error.message) || error));
      return;
    }
    show("idle", "Look at the camera to check in");
    loop(run);
  }

  function grabFrame() {
    if (!video.videoWidth) return Promise.resolve(null);
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    return new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  }

  async function post(url, blob) {
    const form = new FormData();
    form.append("image", blob, "frame.jpg");
    const response = await fetch(url, { method: "POST", body: form, ...authorized(state.key) });
    return { response, body: await response.json().catch(() => null) };
  }

  async function loop(run) {
    let failures = 0;
    while (run === state.run) {
      const started = performance.now();
      const blob = await grabFrame();
      if (!blob) {
        await sleep(200);
        continue;
      }
      let answer;
      try {
        answer = state.checkIn
          ? await post(`${root.dataset.checkInsUrl}${state.checkIn.id}/frames/`, blob)
          : await post(root.dataset.checkInsUrl, blob);
      } catch (error) {
        failures += 1;
        state.checkIn = null;
        show("error", "Cannot reach the server", "Retrying…");
        await sleep(Math.min(1000 * 2 ** failures, 30000));
        continue;
      }
      if (run !== state.run) return;
      failures = 0;
      const pause = await handle(answer);
      const wait = (pause || (state.checkIn ? CHALLENGE_INTERVAL_MS : IDLE_INTERVAL_MS)) - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
  }

  // What an answer shows; returns how long to wait before the next frame (0: the usual).
  async function handle({ response, body }) {
    const code = body && body.error && body.error.code;
    if (response.status === 401 || response.status === 403) {
      localStorage.removeItem(KEY_STORAGE);
      showSetup(errorText(body));
      return 0;
    }
    if (response.status === 429 || response.status >= 500) {
      state.checkIn = null;
      show("error", "One moment, please", errorText(body));
      return 1000 * Number(response.headers.get("Retry-After") || 5);
    }
    if (!state.checkIn) {
      if (response.status === 201) {
        state.checkIn = body;
        const left = body.direction === "left";
        show("challenge", `Turn your head to your ${body.direction}`, "", left ? "←" : "→");
      } else {
        show("idle", code === "face_not_frontal" ? "Look straight at the camera" : "Look at the camera to check in");
      }
      return 0;
    }
    if (!response.ok || body.outcome === "pending") {
      if (!response.ok) state.checkIn = null; // ended or gone (409, 404): start again
      return 0;
    }
    state.checkIn = null;
    if (body.outcome === "passed" && body.person) {
      show("welcome", `Welcome, ${body.person.name}`, `Checked in at ${new Date(body.finished_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
    } else {
      show("refused", REFUSED, DETAILS[body.reason] || "");
    }
    panel.dataset.checkIn = String(body.id);
    await sleep(RESULT_MS);
    show("idle", "Look at the camera to check in");
    return 0;
  }

  byId("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = byId("kiosk-key").value.trim();
    if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
    begin(key);
  });
  byId("forget").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    showSetup("");
  });

  const saved = localStorage.getItem(KEY_STORAGE);
  if (saved) begin(saved);
  else showSetup("");
})();
