// Customer search-as-you-type for the service-logging form (a WAI-ARIA combobox).
// Type a name or number; ↓/↑ move through the matches, Enter picks one, Escape closes.
// Without JavaScript the field still works: the customer number alone is enough.
(function () {
  "use strict";
  const input = document.querySelector("input[role=combobox][data-search-url]");
  if (!input) return;
  const listbox = document.getElementById(input.getAttribute("aria-controls"));
  const searchUrl = input.dataset.searchUrl;
  // The page passes its words in, translated: this file holds no user-facing text.
  const noMatch = input.dataset.noMatch || "";
  let options = [];
  let active = -1;
  let timer = null;
  let sequence = 0;
  let chosen = input.value;

  function open() {
    listbox.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function close() {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    const items = listbox.querySelectorAll("[role=option]");
    items.forEach((item, i) => item.setAttribute("aria-selected", i === index ? "true" : "false"));
    active = index;
    if (index >= 0 && items[index]) {
      input.setAttribute("aria-activedescendant", items[index].id);
      items[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function choose(index) {
    const option = options[index];
    if (!option) return;
    input.value = option.label;
    chosen = option.label;
    close();
    input.dispatchEvent(new CustomEvent("customer-chosen", { detail: option }));
  }

  function render(results) {
    options = results;
    listbox.replaceChildren();
    if (!results.length) {
      const item = document.createElement("li");
      item.className = "none";
      item.textContent = noMatch;
      listbox.appendChild(item);
    }
    results.forEach((result, index) => {
      const item = document.createElement("li");
      item.id = "customer-option-" + index;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      const number = document.createElement("span");
      number.className = "num";
      number.textContent = result.number;
      item.append(number, document.createTextNode(result.name));
      // mousedown, not click: it fires before the input loses focus.
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        choose(index);
      });
      listbox.appendChild(item);
    });
    open();
    highlight(results.length ? 0 : -1);
  }

  function search() {
    const query = input.value.trim();
    if (!query || query === chosen) {
      close();
      return;
    }
    const mine = ++sequence;
    fetch(searchUrl + "?q=" + encodeURIComponent(query), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then((response) => (response.ok ? response.json() : { results: [] }))
      .then((data) => {
        // Answers can arrive out of order while typing: only the latest counts.
        if (mine === sequence && document.activeElement === input) render(data.results || []);
      })
      .catch(() => close());
  }

  input.addEventListener("input", () => {
    chosen = null;
    clearTimeout(timer);
    timer = setTimeout(search, 120);
  });

  input.addEventListener("keydown", (event) => {
    const isOpen = !listbox.hidden && options.length > 0;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (!isOpen) {
        search();
        return;
      }
      highlight(Math.min(active + 1, options.length - 1));
    } else if (event.key === "ArrowUp") {
      if (!isOpen) return;
      event.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter") {
      if (isOpen) {
        // Enter picks the customer instead of submitting the half-filled form.
        event.preventDefault();
        choose(active >= 0 ? active : 0);
      }
    } else if (event.key === "Escape") {
      if (!listbox.hidden) {
        event.preventDefault();
        close();
      }
    } else if (event.key === "Tab" && isOpen && active >= 0) {
      choose(active);
    }
  });

  input.addEventListener("blur", () => setTimeout(close, 150));
})();
