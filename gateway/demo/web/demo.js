// The rtcio-gateway demo room. Everything here goes through the public
// rtc.io client API (io, RTCIOStream, emit/on, server.emit/on,
// untrackStream); the gateway is just the signaling server and one more peer.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
let roomId = (params.get("room") ?? "").trim();
if (!roomId) {
  roomId = "room-" + crypto.randomUUID().slice(0, 8);
  params.set("room", roomId);
  history.replaceState(null, "", "?" + params);
}
const name = (params.get("name") ?? "").trim().slice(0, 40) || "guest-" + crypto.randomUUID().slice(0, 4);
$("room-label").textContent = `room ${roomId} · you are ${name}`;

const status = (text) => { $("status").textContent = text; };

// tiles by MediaStream id: {el, owner, kind}
const tiles = new Map();

let camera = null; // RTCIOStream of our camera and microphone
let screen = null; // RTCIOStream of our screen share
let micOn = true;
let camOn = true;
let published = false;

// The stream's arguments carry our socket id so that others can tie the
// tile to a person (and drop it when the person leaves): publish once the
// id exists.
function publishCamera() {
  if (published || !camera || !socket.connected) return;
  published = true;
  socket.emit("camera", { id: socket.id, name, camera });
}

function showTile(mediaStream, { owner, label, kind, local }) {
  let tile = tiles.get(mediaStream.id);
  if (!tile) {
    const el = $("tile-template").content.firstElementChild.cloneNode(true);
    el.classList.toggle("screen", kind === "screen");
    const video = el.querySelector("video");
    video.muted = !!local; // never play our own microphone back
    video.srcObject = mediaStream;
    $("tiles").append(el);
    tile = { el, owner, kind };
    tiles.set(mediaStream.id, tile);
    // A remote stream whose last track went away is over.
    mediaStream.addEventListener("removetrack", () => {
      if (mediaStream.getTracks().length === 0) removeTile(mediaStream.id);
    });
  }
  tile.el.querySelector("figcaption").textContent = label;
  return tile;
}

function removeTile(streamId) {
  const tile = tiles.get(streamId);
  if (!tile) return;
  tile.el.remove();
  tiles.delete(streamId);
}

function removeTilesOf(owner, kind) {
  for (const [id, t] of tiles) {
    if (t.owner === owner && (!kind || t.kind === kind)) removeTile(id);
  }
}

async function iceServers() {
  const url = meta("rtcio-ice-servers-url");
  if (!url) return undefined;
  try {
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()).iceServers;
  } catch (err) {
    console.warn("no TURN credentials, trying without:", err);
    return undefined;
  }
}

const { default: io, RTCIOStream } = await import(meta("rtcio-client-url"));
const socket = io(location.origin, {
  path: meta("rtcio-signaling-path") || "/socket.io/",
  iceServers: await iceServers(),
});

// --- presence (server events) ---------------------------------------------

const people = new Map(); // socket id -> {name, mic, cam}

function renderPeople() {
  const ul = $("people");
  ul.replaceChildren();
  for (const [id, p] of people) {
    const li = document.createElement("li");
    li.textContent = `${p.name || id}${p.mic === false ? " (muted)" : ""}${p.cam === false ? " (camera off)" : ""}`;
    ul.append(li);
  }
  for (const t of tiles.values()) {
    const p = people.get(t.owner);
    if (p && !t.el.classList.contains("local")) {
      t.el.querySelector("figcaption").textContent =
        `${p.name || t.owner}${t.kind === "screen" ? " (screen)" : ""}${p.mic === false ? " 🔇" : ""}`;
    }
  }
}

socket.on("connect", () => {
  status("connected");
  // socket.io reconnects by itself but does not re-join rooms.
  socket.server.emit("join-room", { roomId, name });
  socket.server.emit("media-state", { roomId, mic: micOn, cam: camOn });
  publishCamera();
});
socket.on("disconnect", () => status("reconnecting…"));

socket.server.on("user-connected", ({ id, name: who, mic, cam }) => {
  people.set(id, { name: who, mic, cam });
  renderPeople();
});
socket.server.on("user-disconnected", ({ id }) => {
  people.delete(id);
  removeTilesOf(id);
  renderPeople();
});
socket.server.on("media-state", ({ id, mic, cam }) => {
  const p = people.get(id) ?? {};
  people.set(id, { ...p, mic, cam });
  renderPeople();
});
socket.server.on("stopScreenShare", ({ id } = {}) => {
  if (id) removeTilesOf(id, "screen");
});

// --- media ----------------------------------------------------------------

try {
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  camera = new RTCIOStream(media);
  showTile(media, { owner: "me", label: `${name} (you)`, kind: "camera", local: true }).el.classList.add("local");
  publishCamera();
} catch (err) {
  status("no camera or microphone: watching only");
  $("mic").disabled = true;
  $("cam").disabled = true;
  console.warn("getUserMedia failed:", err);
}

socket.on("camera", ({ id, name: who, camera: remote }) => {
  if (!remote?.mediaStream) return;
  if (id && !people.has(id)) people.set(id, { name: who });
  showTile(remote.mediaStream, { owner: id, label: who || id || "guest", kind: "camera" });
  renderPeople();
});

socket.on("screen", ({ id, name: who, screen: remote }) => {
  if (!remote?.mediaStream) return;
  showTile(remote.mediaStream, { owner: id, label: `${who || id || "guest"} (screen)`, kind: "screen" });
});

socket.on("track-removed", ({ stream }) => {
  if (stream && stream.getTracks().length === 0) removeTile(stream.id);
});

// Through the gateway there is a single peer; when it goes, every remote
// tile goes with it.
socket.on("peer-disconnect", () => {
  for (const [id, t] of tiles) if (t.owner !== "me") removeTile(id);
});

function setPressed(button, on, onText, offText) {
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? onText : offText;
}

$("mic").addEventListener("click", () => {
  micOn = !micOn;
  for (const t of camera?.mediaStream.getAudioTracks() ?? []) t.enabled = micOn;
  setPressed($("mic"), micOn, "Mic on", "Mic off");
  socket.server.emit("media-state", { roomId, mic: micOn, cam: camOn });
});

$("cam").addEventListener("click", () => {
  camOn = !camOn;
  for (const t of camera?.mediaStream.getVideoTracks() ?? []) t.enabled = camOn;
  setPressed($("cam"), camOn, "Camera on", "Camera off");
  socket.server.emit("media-state", { roomId, mic: micOn, cam: camOn });
});

function stopScreen() {
  if (!screen) return;
  const s = screen;
  screen = null;
  for (const t of s.mediaStream.getTracks()) t.stop();
  // Untracking keeps later joiners from being offered a dead stream.
  socket.untrackStream(s);
  removeTile(s.mediaStream.id);
  socket.server.emit("stopScreenShare", { roomId });
  setPressed($("screen"), false, "Stop sharing", "Share screen");
}

$("screen").addEventListener("click", async () => {
  if (screen) {
    stopScreen();
    return;
  }
  try {
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    screen = new RTCIOStream(display);
    // The browser's own "stop sharing" bar ends the track.
    display.getVideoTracks()[0]?.addEventListener("ended", stopScreen);
    showTile(display, { owner: "me", label: `${name} (your screen)`, kind: "screen", local: true }).el.classList.add("local");
    socket.emit("screen", { id: socket.id, name, screen });
    setPressed($("screen"), true, "Stop sharing", "Share screen");
  } catch (err) {
    console.warn("screen share refused:", err);
  }
});

// --- chat (ctrl channel events) ---------------------------------------------

function addChat(who, text) {
  const li = document.createElement("li");
  const b = document.createElement("span");
  b.className = "who";
  b.textContent = who;
  li.append(b, document.createTextNode(text));
  $("chat-log").append(li);
  li.scrollIntoView({ block: "end" });
}

socket.on("chat", (msg) => {
  if (!msg || typeof msg.text !== "string") return;
  addChat(String(msg.name ?? "guest").slice(0, 40), msg.text.slice(0, 2000));
});

$("chat-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text) return;
  socket.emit("chat", { name, text });
  addChat(`${name} (you)`, text);
  $("chat-input").value = "";
});

window.addEventListener("pagehide", () => socket.disconnect());
