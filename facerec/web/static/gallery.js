// The gallery page: every person with a thumbnail, each photo with what enrolment made of it, and deletes.
"use strict";

const peopleBox = document.getElementById("people");
const galleryMessage = document.getElementById("gallery-message");

function photoUrl(name, file) {
  return `/api/people/${encodeURIComponent(name)}/photos/${encodeURIComponent(file)}`;
}

async function remove(what, path) {
  if (!window.confirm(`Delete ${what}? This removes it from the dataset and the embeddings file.`)) return;
  try {
    await api("DELETE", path);
    galleryMessage.textContent = `deleted ${what}`;
  } catch (error) {
    galleryMessage.textContent = error.message;
  }
  await load();
}

function personCard(person) {
  const cover = person.photos.find((photo) => photo.status === "used" && !photo.link) ||
                person.photos.find((photo) => !photo.link);
  const counts = `${person.used} used, ${person.skipped} skipped` +
                 (person.pending ? `, ${person.pending} not learned yet` : "");
  const card = element("article", {className: "person", id: `person-${person.name}`},
    cover ? element("img", {className: "cover", src: photoUrl(person.name, cover.file), alt: person.name}) : "",
    element("h2", {}, person.name),
    element("p", {className: "counts"}, counts),
    element("button", {type: "button", className: "delete-person",
                       onclick: () => remove(`${person.name} and all their photos`,
                                             `/api/people/${encodeURIComponent(person.name)}`)},
            `Delete ${person.name}`));
  const list = element("ul", {className: "photos"});
  for (const photo of person.photos) {
    list.append(element("li", {className: photo.status === "used" ? "used" : "skipped"},
      photo.link ? "" : element("img", {src: photoUrl(person.name, photo.file), alt: photo.file, loading: "lazy"}),
      element("span", {className: "file"}, photo.file),
      element("span", {className: "status"}, photo.status),
      element("button", {type: "button", className: "delete-photo", title: `delete ${photo.file}`,
                         onclick: () => remove(`${person.name}/${photo.file}`, photoUrl(person.name, photo.file))},
              "Delete")));
  }
  if (!person.photos.length) list.append(element("li", {}, person.link
    ? "a symbolic link to a folder elsewhere: its photos are not shown, Delete removes only the link"
    : "no photo in the dataset (only in the embeddings file)"));
  card.append(list);
  return card;
}

async function load() {
  try {
    const gallery = await api("GET", "/api/people");
    document.getElementById("summary").textContent =
      `${gallery.people.length} people in ${gallery.embeddings} (${gallery.profile} profile)`;
    peopleBox.replaceChildren(...gallery.people.map(personCard));
  } catch (error) {
    galleryMessage.textContent = error.message;
  }
}

document.getElementById("learn").addEventListener("click", async () => {
  try {
    await api("POST", "/api/learn");
  } catch (error) {
    galleryMessage.textContent = error.message;
    return;
  }
  await followLearning(document.getElementById("progress"), galleryMessage);
  await load();
});

load();
