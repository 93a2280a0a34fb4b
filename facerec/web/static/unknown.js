// The Unknown tab: the groups of faces nobody has named yet (serve.py --keep-unknowns), refreshed every few
// seconds, each with its best crops and the actions of unknowns.py: name, ignore, merge, forget (each confirmed).
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

load();
setInterval(load, REFRESH_MS);
