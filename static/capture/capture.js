// The capture page: the browser's camera -> JPEG frames -> POST /api/v1/frames/?wait=10
// -> boxes with names over the live video. Plain JavaScript: no framework, no CDN.
//
// One request is in flight at a time: ticks that come while it is out are skipped, so a
// slow server lowers the rate instead of queueing frames. A 429 pauses sending for its
// Retry-After (or an exponential backoff without one); network and server errors back
// off exponentially; 401 and 403 stop, since retrying cannot help.
(function () {
  "use strict";

  const MAX_SIDE = 1280; // frames are scaled down to this long side before they are sent
  const JPEG_QUALITY = 0.85;
  const MAX_BACKOFF_SECONDS = 60;
  const TICK_MS = 100;

  const root = document.getElementById("capture");
  const byId = (id) => document.getElementById(id);
  const video = byId("video");
  const overlay = byId("overlay");
  const statusLine = byId("status");
  const rateSelect = byId("rate");
  const deviceField = byId("device-field");
  const deviceSelect = byId("device");
  const cameraSelect = byId("camera"); // the organization's registered cameras; absent when none
  const apiKeyInput = byId("api-key");
  const startButton = byId("start");
  const stopButton = byId("stop");
  const rttOut = byId("rtt");
  const sentOut = byId("sent");
  const namesList = byId("names");
  const grab = document.createElement("canvas");

  const state = {
    run: 0, // bumped on every start and stop: answers to an earlier run are dropped
    stream: null,
    timer: null,
    inFlight: false,
    nextAt: 0,
    pausedUntil: 0,
    pauseReason: "",
    failures: 0,
    sent: 0,
  };

  function setStatus(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "status " + kind;
  }

  function cameraErrorMessage(error) {
    switch (error && error.name) {
      case "NotAllowedError":
      case "SecurityError":
        return (
          "Camera permission denied. Allow the camera for this site (the camera icon in the " +
          "address bar, or the site's settings), then press Start again."
        );
      case "NotFoundError":
      case "OverconstrainedError":
        return "No camera found. Connect a camera (or choose another one), then press Start again.";
      case "NotReadableError":
        return "The camera could not be started: another application may be using it.";
      default:
        return "The camera could not be opened: " + ((error && error.message) || error);
    }
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus("This browser offers no camera to this page: it must be served over HTTPS (or from localhost).", "error");
      return;
    }
    const run = ++state.run;
    startButton.disabled = true;
    setStatus("Asking for the camera…", "idle");
    const deviceId = deviceSelect.value;
    const videoConstraints = deviceId
      ? { deviceId: { exact: deviceId } }
      : { width: { ideal: 640 }, height: { ideal: 480 } };
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: videoConstraints });
    } catch (error) {
      if (run === state.run) {
        startButton.disabled = false;
        setStatus(cameraErrorMessage(error), "error");
      }
      return;
    }
    if (run !== state.run) {
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    state.stream = stream;
    stream.getVideoTracks()[0].addEventListener("ended", () => {
      if (run === state.run) stop("The camera stopped (unplugged, or taken by another application).", "error");
    });
    video.srcObject = stream;
    try {
      await video.play();
    } catch (error) {
      // A muted video may always play; should it not, frames are still grabbed once it does.
    }
    await listDevices(stream);
    Object.assign(state, { inFlight: false, nextAt: 0, pausedUntil: 0, failures: 0 });
    stopButton.disabled = false;
    setStatus("Camera on: sending frames.", "ok");
    state.timer = setInterval(tick, TICK_MS);
  }

  function stop(message, kind) {
    state.run += 1;
    clearInterval(state.timer);
    state.timer = null;
    if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
    state.stream = null;
    video.srcObject = null;
    clearOverlay();
    startButton.disabled = false;
    stopButton.disabled = true;
    setStatus(message || "Stopped.", kind || "idle");
  }

  async function listDevices(stream) {
    const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    const current = stream.getVideoTracks()[0].getSettings().deviceId;
    deviceSelect.replaceChildren(
      ...devices.map((device, index) => new Option(device.label || `Camera ${index + 1}`, device.deviceId, false, device.deviceId === current))
    );
    deviceField.hidden = devices.length < 2;
  }

  function tick() {
    const now = performance.now();
    if (state.pausedUntil) {
      if (now < state.pausedUntil) {
        const seconds = Math.ceil((state.pausedUntil - now) / 1000);
        setStatus(`${state.pauseReason}, retrying in ${seconds} s`, "warn");
        return;
      }
      state.pausedUntil = 0;
      setStatus("Retrying…", "warn");
    }
    if (state.inFlight || now < state.nextAt || !video.videoWidth) return;
    state.nextAt = now + 1000 / Number(rateSelect.value);
    send(state.run);
  }

  function grabFrame() {
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const size = { width: grab.width, height: grab.height };
    return new Promise((resolve) => grab.toBlob((blob) => resolve({ blob, ...size }), "image/jpeg", JPEG_QUALITY));
  }

  async function send(run) {
    state.inFlight = true;
    try {
      const capturedAt = new Date().toISOString();
      const frame = await grabFrame();
      if (!frame.blob) return; // the video has no picture yet
      const form = new FormData();
      form.append("image", frame.blob, "frame.jpg");
      form.append("captured_at", capturedAt);
      if (cameraSelect && cameraSelect.value) form.append("camera", cameraSelect.value);
      const request = { method: "POST", body: form, headers: {} };
      const apiKey = apiKeyInput.value.trim();
      if (apiKey) {
        // A device's request: the key alone, without the session.
        request.headers["Authorization"] = "Api-Key " + apiKey;
        request.credentials = "omit";
      } else {
        request.headers["X-CSRFToken"] = root.dataset.csrfToken;
        request.credentials = "same-origin";
      }
      const started = performance.now();
      let response;
      try {
        response = await fetch(root.dataset.framesUrl, request);
      } catch (error) {
        if (run === state.run) backOff("Network error: the server cannot be reached");
        return;
      }
      const body = await response.json().catch(() => null);
      if (run !== state.run) return;
      rttOut.textContent = `${Math.round(performance.now() - started)} ms`;
      state.sent += 1;
      sentOut.textContent = String(state.sent);
      answer(response, body, frame);
    } finally {
      if (run === state.run) state.inFlight = false;
    }
  }

  function answer(response, body, frame) {
    if (response.ok && body) {
      if (body.status === "done") {
        state.failures = 0;
        draw(body.faces, frame);
        const count = body.faces.length;
        setStatus(`Recognizing: ${count} face${count === 1 ? "" : "s"} in the last frame.`, "ok");
      } else if (body.status === "failed") {
        backOff(`The frame failed: ${body.error ? body.error.message : "unknown error"}`);
      } else {
        state.failures = 0;
        setStatus("The last frame is still queued after 10 s: the workers are busy.", "warn");
      }
      return;
    }
    const error = (body && body.error) || { code: `http_${response.status}`, message: response.statusText || "no answer" };
    if (response.status === 429) {
      const retryAfter = Number(response.headers.get("Retry-After"));
      const reason = error.code === "queue_full" ? "Throttled (the recognition queue is full)" : "Throttled";
      backOff(reason, retryAfter > 0 ? retryAfter : null);
    } else if (response.status === 401 || response.status === 403) {
      const hint = apiKeyInput.value.trim() ? " Check the API key." : " Sign in again, or use an API key.";
      stop(`Refused (${response.status} ${error.code}): ${error.message}${hint}`, "error");
    } else {
      backOff(`Error ${response.status} (${error.code}): ${error.message}`);
    }
  }

  function backOff(reason, seconds) {
    state.failures += 1;
    const wait = seconds || Math.min(MAX_BACKOFF_SECONDS, 2 ** (state.failures - 1)); // 1, 2, 4 … 60 s
    state.pausedUntil = performance.now() + wait * 1000;
    state.pauseReason = reason.replace(/\.$/, ""); // "…answered., retrying" reads badly
    setStatus(`${state.pauseReason}, retrying in ${Math.ceil(wait)} s`, "warn");
  }

  function sizeOverlay() {
    const width = video.clientWidth;
    const height = video.clientHeight;
    const ratio = window.devicePixelRatio || 1;
    overlay.width = Math.round(width * ratio);
    overlay.height = Math.round(height * ratio);
    overlay.style.width = `${width}px`;
    overlay.style.height = `${height}px`;
    const context = overlay.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    return { context, width, height };
  }

  function clearOverlay() {
    sizeOverlay();
    overlay.dataset.faces = "0";
  }

  // Boxes come in the pixels of the frame that was sent; the video is shown at its own size.
  function draw(faces, frame) {
    const { context, width, height } = sizeOverlay();
    const sx = width / frame.width;
    const sy = height / frame.height;
    context.font = "bold 14px system-ui, sans-serif";
    context.lineWidth = 3;
    for (const face of faces) {
      const known = Boolean(face.person);
      const label = known ? `${face.person.name} ${Math.round(face.similarity * 100)} %` : "unknown";
      const color = known ? "#1e7a3c" : "#b3261e";
      const x = face.box.x * sx;
      const y = face.box.y * sy;
      const w = face.box.w * sx;
      const h = face.box.h * sy;
      context.strokeStyle = color;
      context.strokeRect(x, y, w, h);
      const labelY = y >= 20 ? y - 20 : y + h; // above the box, or below it at the top edge
      context.fillStyle = color;
      context.fillRect(x - 1.5, labelY, context.measureText(label).width + 8, 20);
      context.fillStyle = "#fff";
      context.fillText(label, x + 3, labelY + 15);
    }
    overlay.dataset.faces = String(faces.length);
    showNames(faces);
  }

  function showNames(faces) {
    if (!faces.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "no face in the last frame";
      namesList.replaceChildren(item);
      return;
    }
    namesList.replaceChildren(
      ...faces.map((face) => {
        const item = document.createElement("li");
        item.className = face.person ? "known" : "unknown";
        item.textContent = face.person ? face.person.name : "unknown";
        if (face.person) {
          const similarity = document.createElement("span");
          similarity.className = "muted";
          similarity.textContent = ` ${Math.round(face.similarity * 100)} %`;
          item.append(similarity);
        }
        return item;
      })
    );
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", () => stop());
  deviceSelect.addEventListener("change", () => {
    if (state.stream) {
      stop();
      start();
    }
  });
})();
