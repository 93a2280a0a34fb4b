// What every page needs: JSON requests that turn a refusal into an Error carrying the server's message.
"use strict";

async function api(method, path, body, headers) {
  const response = await fetch(path, {method, body, headers: headers || {}, credentials: "same-origin"});
  let content = null;
  try {
    content = await response.json();
  } catch (error) {
    content = {error: `the server answered ${response.status} without JSON`};
  }
  if (!response.ok) {
    throw new Error(content.error || `the server answered ${response.status}`);
  }
  return content;
}

// A new DOM element with these properties and children.
function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, attributes || {});
  node.append(...children);
  return node;
}

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

// Poll the learning job until it ends, showing its progress on a <progress> bar and a line of text.
async function followLearning(bar, text) {
  bar.hidden = false;
  for (;;) {
    const state = await api("GET", "/api/learn");
    bar.max = Math.max(state.total, 1);
    bar.value = state.done;
    text.textContent = state.state === "learning" ? `learning: ${state.message}` : `${state.state}: ${state.message}`;
    if (state.state !== "learning") break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  bar.hidden = true;
}
