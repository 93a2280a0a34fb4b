// The live page: the browser's camera, frames to the server over a WebSocket, boxes and names drawn back.
// At most MAX_IN_FLIGHT frames are on their way at once; the server answers only the newest (protocol.py).
"use strict";

const MAX_IN_FLIGHT = 2;
const JPEG_QUALITY = 0.8;
const PHOTO_QUALITY = 0.95;
const FPS_SMOOTHING = 0.9;
const KNOWN = "#00c800";
const UNKNOWN = "#e60000";

const video = document.getElementById("camera");
const overlay = document.getElementById("overlay");
const grabber = document.createElement("canvas");
const message = document.getElementById("message");

let socket = null;
let inFlight = 0;
let frameNumber = 0;
const sentAt = new Map();
let fps = 0;
let lastAnswer = 0;

function label(face) {
  const label = face.distance === null ? face.name : `${face.name}: ${face.distance.toFixed(2)}`;
  return face.track === undefined ? label : `#${face.track} ${label}`;
}

function cameraProblem(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The browser refused the camera. Allow it for this site (the camera icon in the address bar), " +
             "then reload; or start serve.py with --source to use a camera of the server.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found. Plug one in and reload, or start serve.py with --source.";
    case "NotReadableError":
      return "The camera is in use by another program. Close it and reload.";
    default:
      return `The camera cannot be opened: ${error.message || error.name}.`;
  }
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    show(message, "This page cannot use a camera here: browsers allow it only on https:// or on this " +
                  "computer (http://localhost or 127.0.0.1). Open it that way, or start serve.py with --source.");
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: 640}}, audio: false});
  } catch (error) {
    show(message, cameraProblem(error));
    return;
  }
  video.addEventListener("loadeddata", () => {
    overlay.width = grabber.width = video.videoWidth;
    overlay.height = grabber.height = video.videoHeight;
    connect();
  }, {once: true});
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws${location.search}`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    document.getElementById("connection").textContent = "connected";
    inFlight = 0;
    sentAt.clear();
    pump();
  };
  socket.onmessage = (event) => answered(JSON.parse(event.data));
  socket.onclose = (event) => {
    document.getElementById("connection").textContent =
      `disconnected${event.reason ? ": " + event.reason : ""}; reconnecting…`;
    setTimeout(connect, 1000);
  };
}

function grab(quality) {
  grabber.getContext("2d").drawImage(video, 0, 0, grabber.width, grabber.height);
  return new Promise((resolve) => grabber.toBlob(resolve, "image/jpeg", quality));
}

async function pump() {
  while (socket && socket.readyState === WebSocket.OPEN && inFlight < MAX_IN_FLIGHT) {
    inFlight += 1;
    const number = frameNumber++ >>> 0;
    const blob = await grab(JPEG_QUALITY);
    const header = new DataView(new ArrayBuffer(4));
    header.setUint32(0, number);
    sentAt.set(number, performance.now());
    socket.send(new Blob([header, blob]));
  }
}

function answered(answer) {
  const now = performance.now();
  inFlight = Math.max(0, inFlight - 1 - (answer.dropped || 0));
  const started = sentAt.get(answer.frame);
  for (const number of sentAt.keys()) {
    if (number <= answer.frame) sentAt.delete(number);
  }
  if (lastAnswer) {
    const instant = 1000 / Math.max(now - lastAnswer, 1);
    fps = fps ? FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * instant : instant;
  }
  lastAnswer = now;
  document.getElementById("fps").textContent = `${fps.toFixed(1)} fps`;
  if (started !== undefined) document.getElementById("rtt").textContent = `${Math.round(now - started)} ms`;
  document.getElementById("server-ms").textContent = `${Math.round(answer.server_ms)} ms`;
  if (answer.error) {
    document.getElementById("connection").textContent = `the server refused a frame: ${answer.error}`;
  } else {
    draw(answer.faces);
  }
  pump();
}

function draw(faces) {
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  context.font = "16px sans-serif";
  context.lineWidth = 3;
  const list = document.getElementById("faces");
  faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const colour = face.name === "Unknown" ? UNKNOWN : KNOWN;
    const text = label(face);
    context.strokeStyle = context.fillStyle = colour;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const width = context.measureText(text).width + 8;
    const top = y1 >= 22 ? y1 - 22 : y1;  // above the box, or inside it at the frame's top edge
    const left = Math.min(Math.max(x1, 0), Math.max(overlay.width - width, 0));
    context.fillRect(left, top, width, 22);
    context.fillStyle = "#fff";
    context.fillText(text, left + 4, top + 16);
    // the items are kept from frame to frame (only their text changes): a button stays there to be clicked
    const item = list.children[index] || list.appendChild(faceItem());
    item.firstChild.textContent = text;
    item.className = face.name === "Unknown" ? "unknown" : "known";
    const button = item.lastChild;
    button.hidden = !face.face || face.name === "Unknown";
    button.dataset.face = face.face || "";
    button.dataset.name = face.name;
    button.textContent = `Not ${face.name}`;
  });
  while (list.children.length > faces.length) list.lastChild.remove();
}

// A face of the "In view" list: its label, and "Not PERSON" for a named face (notPerson).
function faceItem() {
  const item = document.createElement("li");
  const text = document.createElement("span");
  text.className = "label";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "not-person";
  button.addEventListener("click", () => notPerson(button.dataset.face, button.dataset.name));
  item.append(text, " ", button);
  return item;
}

// "Not PERSON": the face (the id the server gave it) is not the person it was named; the server keeps it as a
// negative example (docs/negatives.md).
async function notPerson(face, name) {
  if (!face || !confirm(`This face is not ${name}? It is kept as a face that is not ${name}: it (and faces ` +
                        `nearer it than ${name}'s photos) will not be named ${name} again.`)) return;
  const send = (force) => api("POST", "/api/negatives", JSON.stringify({face, name, force}),
                              {"Content-Type": "application/json"});
  try {
    let kept;
    try {
      kept = await send(false);
    } catch (error) {
      // refused because the face looks like the person themself (issue 31 item 12): only on a second yes
      if (!error.message.includes("themself") || !confirm(`${error.message}\n\nKeep it anyway?`)) throw error;
      kept = await send(true);
    }
    show(message, `kept as not ${kept.not} (${kept.negatives} negative example${kept.negatives === 1 ? "" : "s"})`);
  } catch (error) {
    show(message, error.message);
  }
}

// enrolment ----------------------------------------------------------------------------------

let enrolmentKey = null;
const enrolMessage = document.getElementById("enrol-message");
const progress = document.getElementById("progress");

function holding(key, name) {
  enrolmentKey = key;
  document.getElementById("capture").hidden = !key;
  document.getElementById("enrolling").textContent = name || "";
  document.getElementById("photo-count").textContent = "0 photos";
}

document.getElementById("enrol-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value;
  try {
    const held = await api("POST", "/api/enrolment", JSON.stringify({name}), {"Content-Type": "application/json"});
    holding(held.key, held.name);
    enrolMessage.textContent = `enrolling ${held.name}: take photos, then Learn`;
  } catch (error) {
    enrolMessage.textContent = error.message;
  }
});

async function takePhoto() {
  if (!enrolmentKey || !video.videoWidth) return;
  try {
    const saved = await api("POST", "/api/enrolment/photos", await grab(PHOTO_QUALITY), {"X-Enrolment": enrolmentKey});
    document.getElementById("photo-count").textContent = `${saved.photos} photo${saved.photos === 1 ? "" : "s"}`;
    enrolMessage.textContent = `saved ${saved.saved}`;
  } catch (error) {
    enrolMessage.textContent = error.message;
  }
}

document.getElementById("take").addEventListener("click", takePhoto);
document.addEventListener("keydown", (event) => {
  if (event.code === "Space" && enrolmentKey && event.target.tagName !== "INPUT" && event.target.tagName !== "BUTTON") {
    event.preventDefault();
    takePhoto();
  }
});

document.getElementById("cancel").addEventListener("click", async () => {
  try {
    await api("DELETE", "/api/enrolment", undefined, {"X-Enrolment": enrolmentKey});
    enrolMessage.textContent = "cancelled: the photos taken stay in the dataset until you delete them";
  } catch (error) {
    enrolMessage.textContent = error.message;
  }
  holding(null);
});

document.getElementById("learn").addEventListener("click", async () => {
  try {
    await api("POST", "/api/learn", undefined, {"X-Enrolment": enrolmentKey});
  } catch (error) {
    enrolMessage.textContent = error.message;
    return;
  }
  holding(null);
  await followLearning(progress, enrolMessage);
});

// the server's own source --------------------------------------------------------------------

async function serverSource() {
  const info = await api("GET", "/api/info");
  if (!info.source) return;
  const section = document.getElementById("server-source");
  const problem = document.getElementById("server-problem");
  const first = document.getElementById("server-video");
  section.hidden = false;
  const cameras = info.cameras && info.cameras.length > 1 ? info.cameras : [""];
  const captions = {};
  cameras.forEach((name, index) => {
    // one view per camera of serve.py --config, captioned with who is in view (the first reuses the page's image)
    const image = index === 0 ? first : first.cloneNode();
    if (name) {
      captions[name] = element("h3", {textContent: name});
      section.insertBefore(captions[name], problem);
      image.alt = `camera ${name}, named by the server`;
    }
    section.insertBefore(image, problem);
    const query = name ? `?camera=${encodeURIComponent(name)}` : "";
    image.onerror = async () => {
      const state = await api("GET", "/api/source" + query);
      show(problem, state.problem || `the server's source ${name} stopped`);
    };
    image.src = "/video" + query;
  });
  if (cameras[0]) setInterval(() => inView(captions), 2000);
}

async function inView(captions) {
  // /api/health answers 503 while a camera reconnects: its JSON is read either way
  const response = await fetch("/api/health", {credentials: "same-origin"});
  const health = await response.json();
  for (const [name, camera] of Object.entries(health.cameras || {})) {
    const who = camera.state === "running" ? (camera.in_view.join(", ") || "nobody") : camera.state;
    if (captions[name]) captions[name].textContent = `${name}: ${who}`;
  }
}

startCamera();
serverSource();
