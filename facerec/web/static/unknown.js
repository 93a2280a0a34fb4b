// The Unknown tab: the groups of faces nobody has named yet (serve.py --keep-unknowns), refreshed every few
// seconds, the most recently seen first (or those of one camera), each with its best crops (a click enlarges
// one) and the actions of unknowns.py: name, ignore, merge, forget (each confirmed, saying what it does);
// a group near a gallery person offers "this is PERSON?" (looks_like), and a photo finds the groups its face
// matches (unknowns.py search).
"use strict";

const REFRESH_MS = 3000;
const groupsBox = document.getElementById("groups");
const unknownMessage = document.getElementById("unknown-message");
let groupIds = [];

function groupPath(id) {
  return `/api/unknowns/${encodeURIComponent(id)}`;
}

const cameraFilter = document.getElementById("camera-filter");
cameraFilter.addEventListener("change", () => load());

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// "2 h ago", "3 min ago", "just now": how long before `now` the time `iso` (UTC, from the server) was.
function ago(iso, now) {
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  const steps = [[86400, "d"], [3600, "h"], [60, "min"]];
  for (const [size, unit] of steps) {
    if (seconds >= size) return `${Math.floor(seconds / size)} ${unit} ago`;
  }
  return "just now";
}

// A time as this browser's clock shows it (its own time zone), then how long ago.
function when(iso, now) {
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  const sameDay = time.toDateString() === new Date(now).toDateString();
  const shown = sameDay ? time.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})
                        : time.toLocaleString([], {dateStyle: "medium", timeStyle: "short"});
  return `${shown} (${ago(iso, now)})`;
}

function counts(group) {
  const now = Date.now();
  return `${plural(group.faces, "face")}, ${plural(group.tracks, "track")} · first seen ${when(group.first_seen, now)} · ` +
         `last seen ${when(group.last_seen, now)} · ${group.cameras.join(", ")}`;
}

// One action on a group, after the user confirmed it; the list is read again whatever the answer.
async function act(question, method, path, body, done) {
  if (!window.confirm(question)) return;
  try {
    const answer = await api(method, path, body === undefined ? undefined : JSON.stringify(body),
                             {"Content-Type": "application/json"});
    unknownMessage.textContent = done(answer);
  } catch (error) {
    unknownMessage.textContent = error.message;
  }
  await load();
}

function groupCard(group) {
  const id = group.group;
  const person = element("input", {className: "person", placeholder: "name (a person of the gallery or new)",
                                   autocomplete: "off", required: true});
  person.setAttribute("list", "people-list");
  const nameForm = element("form", {className: "name-form"}, person, element("button", {type: "submit"}, "Name"));
  nameForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = person.value.trim();
    if (!name) return;
    act(`Name group ${id} "${name}"? Its best crops become photos of ${name} in the dataset and are learned.`,
        "POST", `${groupPath(id)}/name`, {person: name},
        (answer) => `group ${id} is now ${answer.person} (${answer.photos.length} photos learned)`);
  });
  const mergeWith = element("select", {className: "merge-with"});
  const mergeButton = element("button", {type: "button", className: "merge-button", onclick: () => {
    const other = Number(mergeWith.value);
    if (!mergeWith.value) return;
    act(`Move group ${other}'s faces into group ${id}? Group ${other} is gone afterwards: they are one person, ` +
        `group ${id}.`, "POST", `${groupPath(id)}/merge`, {other}, () => `group ${other} joined group ${id}`);
  }});
  const card = element("article", {className: "group", id: `group-${id}`},
    element("h2", {}, `Group ${id}`),
    element("div", {className: "crops"}),
    element("p", {className: "counts"}),
    element("p", {className: "looks-like"}),
    nameForm,
    element("p", {className: "actions"},
      element("button", {type: "button", className: "ignore",
                         onclick: () => act(`Ignore group ${id}? It is never proposed again and faces that match it ` +
                                            "are not kept again.", "POST", `${groupPath(id)}/ignore`, undefined,
                                            () => `group ${id} is ignored`)}, "Ignore"),
      element("button", {type: "button", className: "forget",
                         onclick: () => act(`Forget group ${id}? Its ${plural(Number(card.dataset.count), "face")} ` +
                                            "(crops and vectors) are deleted for good: this cannot be undone.",
                                            "DELETE", groupPath(id), undefined,
                                            (answer) => `group ${id} is forgotten (${answer.faces} faces deleted)`)},
              "Forget…")),
    element("p", {className: "merge"}, mergeWith, mergeButton));
  mergeWith.addEventListener("change", () => mergeLabel(mergeButton, mergeWith, id));
  card.dataset.faces = "";
  return card;
}

// The merge button says which way it merges: the group chosen joins this one.
function mergeLabel(button, select, id) {
  button.textContent = select.value ? `Move group ${select.value}'s faces into group ${id}`
                                    : `Move another group's faces into group ${id}`;
  button.disabled = !select.value;
}

// Bring a card up to date without rebuilding it: what the user is typing or choosing stays.
function update(card, group, all) {
  card.querySelector(".counts").textContent = counts(group);
  card.dataset.count = `${group.faces}`;
  if (card.dataset.faces !== `${group.faces}/${group.last_seen}`) {  // new faces: the best crops may have changed
    card.dataset.faces = `${group.faces}/${group.last_seen}`;
    const version = encodeURIComponent(card.dataset.faces);
    card.querySelector(".crops").replaceChildren(...Array.from({length: group.crops}, (_, number) =>
      element("img", {src: `${groupPath(group.group)}/faces/${number}?v=${version}`,
                      alt: `group ${group.group}, crop ${number + 1}`, title: "click to enlarge",
                      onclick: (event) => event.target.classList.toggle("enlarged")})));
  }
  const suggestion = card.querySelector(".looks-like");
  const like = group.looks_like;
  if (suggestion.dataset.name !== (like ? like.name : "")) {
    suggestion.dataset.name = like ? like.name : "";
    suggestion.replaceChildren(...(like ? [element("button", {type: "button", className: "looks-like-button",
      onclick: () => act(`Name group ${group.group} "${like.name}"? Its best crops become photos of ${like.name} ` +
                         "in the dataset and are learned.", "POST", `${groupPath(group.group)}/name`,
                         {person: like.name},
                         (answer) => `group ${group.group} is now ${answer.person} (${answer.photos.length} photos ` +
                                     "learned)")},
      `this is ${like.name}? (${like.distance.toFixed(2)})`)] : []));
  }
  const select = card.querySelector(".merge-with");
  const chosen = select.value;
  const others = all.filter((other) => other.group !== group.group);
  select.replaceChildren(element("option", {value: ""}, others.length ? "merge group…" : "no other group"),
    ...others.map((other) => element("option", {value: `${other.group}`}, `group ${other.group}`)));
  select.value = others.some((other) => `${other.group}` === chosen) ? chosen : "";
  mergeLabel(card.querySelector(".merge-button"), select, group.group);
}

// The camera filter offers every camera of the groups; the one chosen stays chosen.
function offerCameras(groups) {
  const cameras = [...new Set(groups.flatMap((group) => group.cameras))].sort();
  const chosen = cameraFilter.value;
  cameraFilter.replaceChildren(element("option", {value: ""}, "all cameras"),
    ...cameras.map((camera) => element("option", {value: camera}, camera)));
  cameraFilter.value = cameras.includes(chosen) ? chosen : "";
}

async function load() {
  let answer;
  try {
    answer = await api("GET", "/api/unknowns");
  } catch (error) {
    document.getElementById("unknown-summary").textContent = error.message;
    return;
  }
  offerCameras(answer.groups);
  const camera = cameraFilter.value;
  // the most recently seen first: who came to the door last is who is reviewed first
  const groups = answer.groups.filter((group) => !camera || group.cameras.includes(camera))
    .sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen) || a.group - b.group);
  document.getElementById("unknown-summary").textContent = groups.length
    ? `${groups.length} unknown ${groups.length === 1 ? "person" : "people"} to review` +
      `${camera ? ` seen by ${camera}` : ""}, the most recently seen first`
    : "no unknown faces to review";
  document.getElementById("people-list").replaceChildren(
    ...answer.people.map((name) => element("option", {value: name})));
  const cards = new Map(Array.from(groupsBox.children, (card) => [card.id, card]));
  const ids = groups.map((group) => `group-${group.group}`);
  for (const group of groups) {
    const card = cards.get(`group-${group.group}`) || groupCard(group);
    update(card, group, answer.groups);
    cards.delete(card.id);
    if (!card.isConnected) groupsBox.append(card);
  }
  for (const gone of cards.values()) gone.remove();
  if (ids.join() !== groupIds.join()) {  // moved only when the order changed: moving a card loses its focus
    for (const id of ids) groupsBox.append(document.getElementById(id));
    groupIds = ids;
  }
}

// Search: the photo's face against the kept groups; the groups found are marked, nearest first in the message.
document.getElementById("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("search-photo").files[0];
  if (!file) return;
  for (const card of groupsBox.querySelectorAll(".found")) card.classList.remove("found");
  try {
    const answer = await api("POST", "/api/unknowns/search", file, {"Content-Type": file.type || "image/jpeg"});
    for (const item of answer.found) {
      const card = document.getElementById(`group-${item.group}`);
      if (card) card.classList.add("found");
    }
    unknownMessage.textContent = answer.found.length
      ? "seen before: " + answer.found.map((item) => `group ${item.group} (${item.distance.toFixed(2)})`).join(", ")
      : "not seen before: no kept group matches this face";
  } catch (error) {
    unknownMessage.textContent = error.message;
  }
});

load();
setInterval(load, REFRESH_MS);
