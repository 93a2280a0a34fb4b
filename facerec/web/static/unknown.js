// The Unknown tab: the groups of faces nobody has named yet (serve.py --keep-unknowns), refreshed every few
// seconds, each with its best crops and the actions of unknowns.py: name, ignore, merge, forget (each confirmed);
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

function counts(group) {
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(group.faces, "face")}, ${plural(group.tracks, "track")} · first seen ${group.first_seen} · ` +
         `last seen ${group.last_seen} · ${group.cameras.join(", ")}`;
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
                         onclick: () => act(`Forget group ${id}? Its crops and vectors are deleted for good.`,
                                            "DELETE", groupPath(id), undefined,
                                            (answer) => `group ${id} is forgotten (${answer.faces} faces deleted)`)},
              "Forget")),
    element("p", {className: "merge"}, mergeWith,
      element("button", {type: "button", className: "merge-button",
                         onclick: () => {
                           const other = Number(mergeWith.value);
                           if (!mergeWith.value) return;
                           act(`Merge group ${other} into group ${id}? They become one person.`, "POST",
                               `${groupPath(id)}/merge`, {other}, () => `group ${other} joined group ${id}`);
                         }}, "Merge into this group")));
  card.dataset.faces = "";
  return card;
}

// Bring a card up to date without rebuilding it: what the user is typing or choosing stays.
function update(card, group, all) {
  card.querySelector(".counts").textContent = counts(group);
  if (card.dataset.faces !== `${group.faces}/${group.last_seen}`) {  // new faces: the best crops may have changed
    card.dataset.faces = `${group.faces}/${group.last_seen}`;
    const version = encodeURIComponent(card.dataset.faces);
    card.querySelector(".crops").replaceChildren(...Array.from({length: group.crops}, (_, number) =>
      element("img", {src: `${groupPath(group.group)}/faces/${number}?v=${version}`,
                      alt: `group ${group.group}, crop ${number + 1}`})));
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
}

async function load() {
  let answer;
  try {
    answer = await api("GET", "/api/unknowns");
  } catch (error) {
    document.getElementById("unknown-summary").textContent = error.message;
    return;
  }
  document.getElementById("unknown-summary").textContent = answer.groups.length
    ? `${answer.groups.length} unknown ${answer.groups.length === 1 ? "person" : "people"} to review, largest first`
    : "no unknown faces to review";
  document.getElementById("people-list").replaceChildren(
    ...answer.people.map((name) => element("option", {value: name})));
  const cards = new Map(Array.from(groupsBox.children, (card) => [card.id, card]));
  const ids = answer.groups.map((group) => `group-${group.group}`);
  for (const group of answer.groups) {
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
