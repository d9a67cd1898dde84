// Loquat's page script. The pages work without it (every action is a plain form); this module
// upgrades sending to fetch, follows generating answers over server-sent events, and handles
// small interface actions. Wired through data-* attributes; no build step.

const body = document.body;
const messages = document.getElementById('messages');
const composer = document.getElementById('composer');
const announcer = document.getElementById('announcer');

/** @param {string} name @returns {string} a translated string the page put on <body>. */
const text = (name) => body.dataset[name] || '';

/** Shows a short message at the bottom of the screen. @param {string} message */
function toast(message) {
  const node = document.createElement('div');
  node.className = 'toast';
  node.setAttribute('role', 'alert');
  node.textContent = message;
  document.body.append(node);
  setTimeout(() => node.remove(), 4000);
}

/**
 * Tells screen readers something short through the chat's polite status region (the message
 * list itself is not live, so streamed text is not read at every render).
 * @param {string} message
 */
function announce(message) {
  if (!announcer || !message) return;
  announcer.textContent = '';
  // Set after a beat, so that the same message twice in a row is announced twice.
  setTimeout(() => { announcer.textContent = message; }, 100);
}

/** What `announce` says when an answer ends, by its final status. */
const ENDINGS = { complete: 'i18nAnswerDone', stopped: 'i18nAnswerStopped' };

/** Copies text, also on plain-http origins where the clipboard API is missing. @param {string} value */
async function copyText(value) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(value);
    return;
  }
  const area = document.createElement('textarea');
  area.value = value;
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

/** Adds copy buttons to code blocks under `root`. @param {ParentNode} root */
function enhance(root) {
  // Buttons that work only with the script.
  for (const button of root.querySelectorAll('.msg-bar [hidden][data-action]')) button.hidden = false;
  for (const pre of root.querySelectorAll('.md pre')) {
    if (pre.querySelector('.code-copy')) continue;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'code-copy';
    button.textContent = text('i18nCopy');
    button.addEventListener('click', async () => {
      await copyText(pre.querySelector('code')?.textContent ?? pre.textContent ?? '');
      button.textContent = text('i18nCopied');
      setTimeout(() => { button.textContent = text('i18nCopy'); }, 1500);
    });
    pre.append(button);
  }
}

/** Whether the message list is scrolled (nearly) to the bottom. */
const nearBottom = () => !messages || messages.scrollHeight - messages.scrollTop - messages.clientHeight < 120;
const scrollToBottom = () => { if (messages) messages.scrollTop = messages.scrollHeight; };

/** @param {string|null} id the answer being generated, or null when idle. */
function setBusy(id) {
  if (!composer) return;
  composer.dataset.generating = id ?? '';
  composer.classList.toggle('busy', Boolean(id));
}

/** Waits (ms) before each reopening of a dropped event stream; after the last, an error shows. */
const RECONNECT_DELAYS = [500, 1000, 2000, 4000];

/**
 * Follows a generating answer: `render` events replace its content with the server-rendered
 * text so far, `done` replaces its body with the final one, and the server's `error` event
 * shows its message. A stream that drops (network, server restart, closed without `done`) is
 * reopened a few times with growing delays; then an error with a retry button shows. While it is
 * followed the answer is `aria-busy`; whenever following ends, the composer is released.
 * @param {string} id
 * @param {{ refreshTitle?: boolean }} [options]
 */

/** Replaces what `container` holds with `replace()`, keeping unfolded the finished tool calls
 * the reader unfolded (a render of a streaming answer must not fold them again). */
function keepingUnfolded(container, replace) {
  const unfolded = [...container.querySelectorAll('details.tool-step')]
    .map((step) => step.open && !step.classList.contains('step-running'));
  replace();
  container.querySelectorAll('details.tool-step').forEach((step, index) => {
    if (unfolded[index]) step.open = true;
  });
}

function follow(id, options = {}) {
  const article = document.getElementById(`m-${id}`);
  if (!article) {
    setBusy(null);
    return;
  }
  article.querySelector('.stream-error')?.remove();
  article.setAttribute('aria-busy', 'true');
  setBusy(id);
  let failures = 0;
  /** @param {string} message */
  const fail = (message) => {
    article.removeAttribute('aria-busy');
    showStreamError(article, message, () => follow(id, options));
    setBusy(null);
  };
  const open = () => {
    const source = new EventSource(`/messages/${id}/events`);
    /** Runs a handler; data the page cannot use ends following with an error. */
    const guarded = (handler) => (event) => {
      try {
        handler(event);
      } catch {
        source.close();
        fail(text('i18nStream'));
      }
    };
    source.addEventListener('render', guarded((event) => {
      failures = 0;
      const data = JSON.parse(event.data);
      const stick = nearBottom();
      const content = article.querySelector('.content');
      if (content) keepingUnfolded(content, () => { content.innerHTML = data.html; });
      const reasoning = article.querySelector('.reasoning');
      if (reasoning && data.reasoning_html) {
        reasoning.hidden = false;
        reasoning.querySelector('.reasoning-body').innerHTML = data.reasoning_html;
      }
      if (stick) scrollToBottom();
    }));
    source.addEventListener('done', guarded((event) => {
      source.close();
      const data = JSON.parse(event.data);
      const stick = nearBottom();
      article.dataset.status = data.status;
      article.removeAttribute('aria-busy');
      const bubble = article.querySelector('.bubble');
      if (bubble && data.html) keepingUnfolded(bubble, () => { bubble.innerHTML = data.html; });
      enhance(article);
      setBusy(null);
      announce(text(ENDINGS[data.status] ?? 'i18nAnswerFailed'));
      tokens.refresh();
      if (stick) scrollToBottom();
      if (options.refreshTitle) setTimeout(refreshChrome, 2000);
    }));
    // Both the server's `error` event (a MessageEvent with data) and a failed connection.
    source.addEventListener('error', (event) => {
      source.close();
      if (event instanceof MessageEvent && event.data) {
        let message = '';
        try {
          message = JSON.parse(event.data).message;
        } catch {
          // The generic message below.
        }
        fail(message || text('i18nStream'));
      } else if (failures < RECONNECT_DELAYS.length) {
        setTimeout(open, RECONNECT_DELAYS[failures++]);
      } else {
        fail(text('i18nStream'));
      }
    });
  };
  open();
}

/**
 * Shows why an answer's live view stopped, with a button that starts following it again.
 * @param {HTMLElement} article @param {string} message @param {() => void} retry
 */
function showStreamError(article, message, retry) {
  article.querySelector('.stream-error')?.remove();
  const notice = document.createElement('div');
  notice.className = 'notice notice-error stream-error';
  notice.setAttribute('role', 'alert');
  const words = document.createElement('span');
  words.textContent = `${message} `;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.textContent = text('i18nRetry');
  button.addEventListener('click', () => {
    notice.remove();
    retry();
  });
  notice.append(words, button);
  (article.querySelector('.bubble') ?? article).append(notice);
}

/** Re-reads the page to pick up a new topic title in the sidebar and header. */
async function refreshChrome() {
  const response = await fetch(location.href, { headers: { Accept: 'text/html' } });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), 'text/html');
  for (const selector of ['.topics', '.head-title']) {
    const fresh = page.querySelector(selector);
    const current = document.querySelector(selector);
    if (fresh && current) current.replaceWith(fresh);
  }
  document.title = page.title;
}

/** Sends the composer's message with fetch and follows the answer. @param {HTMLFormElement} form */
async function send(form) {
  const area = form.querySelector('textarea');
  const content = area.value;
  const files = form === composer ? attachments.ready() : { ids: [], pending: false };
  if ((!content.trim() && !files.ids.length) || composer.dataset.generating) return;
  if (files.pending) {
    toast(composer.dataset.i18nUploading);
    return;
  }
  if (attachments.blocked()) {
    toast(composer.querySelector('.composer-warning').textContent);
    return;
  }
  const warning = form === composer ? tokens.warning() : null;
  if (warning && !confirm(warning)) return;
  const payload = new URLSearchParams(new FormData(form));
  payload.set('files', files.ids.join(','));
  area.value = '';
  resize(area);
  setBusy('pending');
  let response;
  try {
    response = await fetch(form.action, {
      method: 'POST',
      headers: { Accept: 'application/json' },
      body: payload,
    });
  } catch {
    area.value = content;
    setBusy(null);
    toast(text('i18nNetwork'));
    return;
  }
  if (!response.ok) {
    area.value = content;
    setBusy(null);
    const error = await response.json().catch(() => null);
    toast(error?.error?.message ?? `${response.status}`);
    return;
  }
  let data;
  try {
    data = await response.json();
  } catch {
    setBusy(null);
    toast(text('i18nNetwork'));
    return;
  }
  if (form === composer) attachments.clear();
  messages.querySelector('.welcome')?.remove();
  messages.insertAdjacentHTML('beforeend', data.html);
  form.querySelector('input[name=topic_id]').value = data.topic_id;
  if (data.created_topic) {
    history.replaceState(null, '', data.topic_url);
    refreshChrome();
  }
  enhance(messages);
  scrollToBottom();
  follow(data.answer_id, { refreshTitle: data.created_topic });
}

/** Grows the textarea with its content. @param {HTMLTextAreaElement} area */
function resize(area) {
  area.style.height = 'auto';
  area.style.height = `${Math.min(area.scrollHeight, window.innerHeight * 0.4)}px`;
}

/** Replaces a message's body with an inline edit form. @param {HTMLElement} article */
async function editInline(article) {
  const id = article.dataset.id;
  const response = await fetch(`/messages/${id}/raw`);
  if (!response.ok) return;
  const raw = await response.text();
  const bubble = article.querySelector('.bubble');
  const form = document.createElement('form');
  form.method = 'post';
  form.action = `/messages/${id}/edit`;
  form.className = 'form inline-edit';
  const area = document.createElement('textarea');
  area.name = 'content';
  area.rows = Math.min(16, raw.split('\n').length + 1);
  area.value = raw;
  const actions = document.createElement('div');
  actions.className = 'actions';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'button secondary small';
  cancel.textContent = text('i18nCancel');
  const save = document.createElement('button');
  save.className = 'button small';
  save.textContent = text('i18nSave');
  actions.append(cancel, save);
  form.append(area, actions);
  const original = bubble.innerHTML;
  bubble.replaceChildren(form);
  area.focus();
  cancel.addEventListener('click', () => { bubble.innerHTML = original; enhance(article); });
}

document.addEventListener('click', async (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  const confirmable = target.closest('[data-confirm]');
  if (confirmable && !confirm(confirmable.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const copyable = /** @type {HTMLElement | null} */ (target.closest('[data-copy]'));
  if (copyable) {
    await copyText(copyable.dataset.copy ?? '');
    toast(text('i18nCopied'));
    return;
  }
  const actionable = target.closest('[data-action]');
  if (!actionable) return;
  const app = document.querySelector('.app');
  switch (actionable.dataset.action) {
    case 'open-sidebar': app?.classList.add('sidebar-open'); break;
    case 'close-sidebar': app?.classList.remove('sidebar-open'); break;
    case 'copy': {
      const article = actionable.closest('.msg');
      const response = await fetch(`/messages/${article.dataset.id}/raw`);
      if (response.ok) {
        await copyText(await response.text());
        toast(text('i18nCopied'));
      }
      break;
    }
    case 'speak':
      speech.toggle(actionable);
      break;
    case 'mic':
      microphone.toggle(actionable);
      break;
    case 'draw': {
      const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById('draw'));
      if (!dialog) break;
      const prompt = dialog.querySelector('textarea');
      const typed = composer?.querySelector('textarea')?.value.trim();
      if (typed && !prompt.value) prompt.value = typed;
      dialog.showModal();
      prompt.focus();
      break;
    }
    case 'translate': {
      const article = actionable.closest('.msg');
      const bubble = article.querySelector('.bubble');
      bubble?.querySelector('.translation')?.remove();
      actionable.disabled = true;
      try {
        const response = await fetch(`/messages/${article.dataset.id}/translate`, {
          method: 'POST', headers: { Accept: 'application/json' },
        });
        const data = await response.json().catch(() => null);
        if (!response.ok) {
          toast(data?.error?.message ?? `${response.status}`);
          break;
        }
        const block = document.createElement('details');
        block.className = 'translation';
        block.open = true;
        const summary = document.createElement('summary');
        summary.textContent = data.label;
        const body = document.createElement('div');
        body.className = 'md';
        body.innerHTML = data.html;
        block.append(summary, body);
        bubble?.append(block);
        enhance(article);
      } catch {
        toast(text('i18nNetwork'));
      } finally {
        actionable.disabled = false;
      }
      break;
    }
    case 'edit':
      event.preventDefault();
      editInline(actionable.closest('.msg'));
      break;
    case 'stop': {
      const id = composer?.dataset.generating;
      if (id && id !== 'pending') {
        await fetch(`/messages/${id}/stop`, { method: 'POST', headers: { Accept: 'application/json' } });
      }
      break;
    }
    case 'cycle-theme': {
      event.preventDefault();
      const response = await fetch('/settings/theme', { method: 'POST', headers: { Accept: 'application/json' } });
      if (response.ok) document.documentElement.dataset.theme = (await response.json()).theme;
      break;
    }
  }
});

document.addEventListener('submit', (event) => {
  const form = /** @type {HTMLFormElement} */ (event.target);
  if (form === composer) {
    event.preventDefault();
    send(form);
  } else if (form.hasAttribute('data-question') && composer) {
    event.preventDefault();
    composer.querySelector('textarea').value = form.querySelector('input[name=content]').value;
    send(composer);
  } else if (form.hasAttribute('data-pull')) {
    event.preventDefault();
    pull(form);
  } else if (event.submitter?.dataset.probe) {
    event.preventDefault();
    probe(form, event.submitter);
  }
});

/** "Check connection" / "Fetch model list" on a provider form. */
async function probe(form, button) {
  const result = form.querySelector('.probe-result');
  button.disabled = true;
  try {
    const response = await fetch('/settings/providers/probe', {
      method: 'POST',
      headers: { Accept: 'application/json' },
      body: new URLSearchParams(new FormData(form)),
    });
    const data = await response.json();
    const ok = Boolean(data.ok);
    result.hidden = false;
    result.className = `probe-result ${ok ? 'ok' : 'fail'}`;
    result.textContent = data.message ?? data.error?.message ?? '';
    if (ok && button.dataset.probe === 'fetch' && data.models.length) {
      form.querySelector('textarea[name=model_list]').value = data.models.join(',');
    }
  } catch {
    toast(text('i18nNetwork'));
  } finally {
    button.disabled = false;
  }
}

/** Hides the parameter fields the selected model rejects (the model bank knows which). */
for (const select of document.querySelectorAll('select[data-params-of]')) {
  const apply = () => {
    const unsupported = (select.selectedOptions[0]?.dataset.unsupported ?? '').split(',');
    for (const field of select.form.querySelectorAll('[data-param]')) {
      field.hidden = unsupported.includes(field.dataset.param);
    }
  };
  select.addEventListener('change', apply);
  apply();
}

/** Shows protocol-specific fields (Azure's API version) only for their protocol. */
for (const select of document.querySelectorAll('select[data-protocol]')) {
  const apply = () => {
    for (const field of select.form.querySelectorAll('[data-only-protocol]')) {
      field.hidden = field.dataset.onlyProtocol !== select.value;
    }
  };
  select.addEventListener('change', apply);
  apply();
}

/**
 * Downloads a model onto Ollama and shows the progress the server streams back.
 * @param {HTMLFormElement} form
 */
async function pull(form) {
  const status = form.querySelector('.pull-status');
  const bar = form.querySelector('progress');
  const button = form.querySelector('button');
  button.disabled = true;
  status.textContent = '…';
  try {
    const response = await fetch(form.action, { method: 'POST', body: new URLSearchParams(new FormData(form)) });
    if (!response.ok || !response.body) {
      const error = await response.json().catch(() => null);
      status.textContent = error?.error?.message ?? `${response.status}`;
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (name === 'progress') {
          const step = JSON.parse(data);
          status.textContent = step.status;
          if (step.total) {
            bar.hidden = false;
            bar.value = Math.round((100 * (step.completed ?? 0)) / step.total);
          }
        } else {
          status.textContent = data;
          bar.hidden = true;
        }
      }
    }
  } catch {
    status.textContent = text('i18nNetwork');
  } finally {
    button.disabled = false;
  }
}

/** Menus (`details[data-menu]`) close on a click elsewhere, and on Escape back to their button. */
document.addEventListener('click', (event) => {
  for (const menu of document.querySelectorAll('details[data-menu][open]')) {
    if (!menu.contains(/** @type {Node} */ (event.target))) menu.open = false;
  }
});
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  const menu = /** @type {HTMLElement} */ (event.target).closest?.('details[data-menu][open]');
  if (!menu) return;
  menu.open = false;
  menu.querySelector('summary')?.focus();
});

/**
 * Files attached in the composer: picked, dropped on it or pasted into it. Each is uploaded at
 * once (a chip with a progress bar, a thumbnail for an image, a remove button) and sent with
 * the message by id. An image with a model that does not read images shows a warning and
 * holds the message back.
 */
/** A byte count as people read it: `820 B`, `14 KB`, `3.2 MB`. @param {number} bytes */
function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const attachments = (() => {
  /** @type {{id: string|null, image: boolean, chip: HTMLLIElement, request: XMLHttpRequest|null}[]} */
  let items = [];
  const list = composer?.querySelector('.chips');
  const warning = composer?.querySelector('.composer-warning');
  const area = composer?.querySelector('textarea');
  const sync = () => {
    if (!composer) return;
    list.hidden = items.length === 0;
    warning.hidden = !(composer.dataset.vision === 'false' && items.some((item) => item.image));
    // A message of only files needs no text.
    area.required = items.length === 0;
    composer.dispatchEvent(new Event('files-changed'));
  };
  const remove = (item) => {
    item.request?.abort();
    const thumb = item.chip.querySelector('img');
    if (thumb) URL.revokeObjectURL(thumb.src);
    item.chip.remove();
    items = items.filter((other) => other !== item);
    sync();
  };
  const add = (file) => {
    const max = Number(composer.dataset.maxBytes || 0);
    if (max && file.size > max) {
      toast(`${file.name} ${composer.dataset.i18nTooLarge}`);
      return;
    }
    const chip = document.createElement('li');
    chip.className = 'chip uploading';
    const image = /^image\/(png|jpeg|gif|webp)$/.test(file.type);
    if (image) {
      const thumb = document.createElement('img');
      thumb.src = URL.createObjectURL(file);
      thumb.alt = '';
      chip.append(thumb);
    }
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = file.name || 'file';
    const size = document.createElement('span');
    size.className = 'size';
    size.textContent = humanSize(file.size);
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'chip-remove';
    close.textContent = '×';
    close.setAttribute('aria-label', `${composer.dataset.i18nRemove} ${file.name}`);
    chip.append(name, size, bar, close);
    list.append(chip);
    const item = { id: null, image, chip, request: new XMLHttpRequest() };
    items.push(item);
    close.addEventListener('click', () => remove(item));
    sync();
    const body = new FormData();
    body.append('file', file, file.name || 'pasted');
    const request = item.request;
    request.open('POST', '/files');
    request.setRequestHeader('Accept', 'application/json');
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    const failed = (message) => {
      toast(message);
      remove(item);
    };
    request.addEventListener('load', () => {
      item.request = null;
      let data = null;
      try { data = JSON.parse(request.responseText); } catch { /* handled below */ }
      if (request.status < 200 || request.status >= 300 || !data?.files?.length) {
        failed(data?.error?.message ?? `${file.name}: ${request.status}`);
        return;
      }
      item.id = data.files[0].id;
      item.image = Boolean(data.files[0].image);
      chip.classList.remove('uploading');
      bar.remove();
      sync();
    });
    request.addEventListener('error', () => failed(`${file.name}: ${text('i18nNetwork')}`));
    request.send(body);
  };
  return {
    add,
    /** The uploaded files' ids, and whether some are still uploading. */
    ready: () => ({ ids: items.filter((item) => item.id).map((item) => item.id), pending: items.some((item) => !item.id) }),
    blocked: () => Boolean(warning && !warning.hidden),
    clear: () => { for (const item of [...items]) remove(item); },
  };
})();

/** The composer's token estimate, asked for again a moment after the text or the files change. */
const tokens = (() => {
  const label = composer?.querySelector('.token-count');
  let timer = 0;
  /** @type {AbortController | null} */
  let asking = null;
  /** @type {{too_large: boolean, warning: string} | null} */
  let last = null;
  const ask = async () => {
    asking?.abort();
    asking = new AbortController();
    const payload = new URLSearchParams(new FormData(composer));
    payload.set('files', attachments.ready().ids.join(','));
    try {
      const response = await fetch(composer.action.replace(/\/send$/, '/tokens'), {
        method: 'POST', headers: { Accept: 'application/json' }, body: payload, signal: asking.signal,
      });
      if (!response.ok) return;
      last = await response.json();
      label.textContent = last.label;
      label.title = last.detail;
      label.classList.toggle('over', last.too_large);
      label.hidden = false;
    } catch {
      // An estimate that does not arrive changes nothing.
    }
  };
  const refresh = () => {
    if (!label) return;
    clearTimeout(timer);
    timer = setTimeout(ask, 400);
  };
  composer?.addEventListener('files-changed', refresh);
  composer?.querySelector('textarea')?.addEventListener('input', refresh);
  if (composer?.querySelector('input[name=topic_id]')?.value) refresh();
  return { refresh, warning: () => (last?.too_large ? last.warning : null) };
})();

if (composer) {
  const picker = composer.querySelector('[data-attach]');
  const button = composer.querySelector('.attach-btn');
  button.hidden = false;
  picker.addEventListener('change', () => {
    for (const file of picker.files) attachments.add(file);
    picker.value = '';
  });
  composer.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    composer.classList.add('dropping');
  });
  composer.addEventListener('dragleave', () => composer.classList.remove('dropping'));
  composer.addEventListener('drop', (event) => {
    composer.classList.remove('dropping');
    if (!event.dataTransfer?.files.length) return;
    event.preventDefault();
    for (const file of event.dataTransfer.files) attachments.add(file);
  });
  composer.addEventListener('paste', (event) => {
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length) return;
    event.preventDefault();
    for (const file of files) attachments.add(file);
  });
}

if (composer) {
  const area = composer.querySelector('textarea');
  area.addEventListener('input', () => resize(area));
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  if (!('ontouchstart' in window)) area.focus();
}

/**
 * Long topics come a page at a time: the page holds the latest messages and a link to the part
 * before them. When that link scrolls into view, the part before is fetched and put in its
 * place, the scroll position moved by exactly what was added so that nothing on screen moves.
 */
function loadEarlierOnScroll() {
  if (!messages || !('IntersectionObserver' in window)) return;
  let loading = false;
  const observer = new IntersectionObserver(async (entries) => {
    const seen = entries.find((entry) => entry.isIntersecting);
    if (!seen || loading) return;
    const marker = /** @type {HTMLElement} */ (seen.target);
    loading = true;
    observer.unobserve(marker);
    try {
      const response = await fetch(marker.dataset.earlier, { headers: { accept: 'text/html' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const part = document.createElement('template');
      part.innerHTML = await response.text();
      // Whatever was on screen stays where it was: the browser's scroll anchoring usually
      // sees to it; whatever drift is left is taken back by hand.
      const reference = marker.nextElementSibling;
      const before = reference?.getBoundingClientRect().top ?? 0;
      marker.replaceWith(part.content);
      const drift = (reference?.getBoundingClientRect().top ?? 0) - before;
      if (drift) messages.scrollTop += drift;
      enhance(messages);
      const next = messages.querySelector('.earlier[data-earlier]');
      if (next) observer.observe(next);
    } catch {
      // The link stays: it still works as a plain link to the earlier page.
      observer.observe(marker);
    } finally {
      loading = false;
    }
  }, { root: messages, rootMargin: '600px 0px 0px 0px' });
  const marker = messages.querySelector('.earlier[data-earlier]');
  if (marker) observer.observe(marker);
}

if (messages) {
  enhance(messages);
  if (!location.hash) scrollToBottom();
  // After the first scroll to the bottom, so the link at the top is not "seen" at once.
  requestAnimationFrame(loadEarlierOnScroll);
  for (const article of messages.querySelectorAll('.msg[data-status=generating]')) follow(article.dataset.id);
}

// Uploads on the Files page: each chosen (or dropped) file is sent on its own, with a progress
// bar; an error names the file and stops. Without this script the form posts them all at once.
for (const form of document.querySelectorAll('form[data-upload]')) {
  const input = /** @type {HTMLInputElement} */ (form.querySelector('input[type=file]'));
  const zone = form.querySelector('.drop-zone');
  const bar = /** @type {HTMLProgressElement} */ (form.querySelector('.upload-progress'));
  const status = form.querySelector('.upload-status');
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      form.requestSubmit();
    }
  });
  const send = (file) => new Promise((resolve, reject) => {
    const body = new FormData();
    body.append('file', file, file.name);
    const request = new XMLHttpRequest();
    request.open('POST', form.action);
    request.setRequestHeader('Accept', 'application/json');
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener('load', () => {
      if (request.status >= 200 && request.status < 300) return resolve(undefined);
      let message = form.dataset.failed;
      try { message = JSON.parse(request.responseText).error.message; } catch { /* keep the generic one */ }
      reject(new Error(message));
    });
    request.addEventListener('error', () => reject(new Error(form.dataset.failed)));
    request.send(body);
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const files = Array.from(input.files || []);
    if (!files.length) return;
    const button = form.querySelector('button');
    button.disabled = true;
    bar.hidden = false;
    let sent = 0;
    try {
      for (const file of files) {
        bar.value = 0;
        status.textContent = `${file.name} (${sent + 1}/${files.length})`;
        await send(file);
        sent += 1;
      }
      location.href = form.dataset.done || `/files?uploaded=${sent}`;
    } catch (error) {
      status.textContent = error.message;
      status.classList.add('error');
      button.disabled = false;
      bar.hidden = true;
    }
  });
}

// The installable app: the worker keeps the shell and shows the offline page when the server
// cannot be reached (it never keeps pages or answers).
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/static/pwa/sw.js', { scope: '/' }).catch(() => { /* the site works without */ });
}

/**
 * Keyboard shortcuts (the `?` dialog lists them): Alt+N a new topic, Shift+Esc the composer,
 * Esc stops the answer being written, Alt+R writes the last answer again, Alt+↑/↓ the previous
 * or next assistant. Letters are read by key position (`code`), so Option on a Mac, which types
 * other characters, works too. Nothing fires while a menu or a dialog is open.
 */
const shortcuts = /** @type {HTMLDialogElement | null} */ (document.getElementById('shortcuts'));
document.addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.isComposing || !shortcuts) return;
  const target = /** @type {HTMLElement} */ (event.target);
  const typing = Boolean(target.closest?.('input, textarea, select, [contenteditable]'));
  const busy = document.querySelector('dialog[open], details[data-menu][open]');
  const mod = event.ctrlKey || event.metaKey;
  const run = (/** @type {() => void} */ action) => {
    event.preventDefault();
    action();
  };
  if (mod && !event.altKey && !event.shiftKey && event.code === 'KeyK') {
    const box = /** @type {HTMLInputElement | null} */ (document.querySelector('.side-search input'));
    if (box) run(() => { document.querySelector('.app')?.classList.add('sidebar-open'); box.focus(); box.select(); });
  } else if (event.key === '?' && !typing && !mod && !event.altKey && !busy) {
    run(() => shortcuts.showModal());
  } else if (busy || mod) {
    // Leave the browser's own shortcuts and open menus alone.
  } else if (event.altKey && event.code === 'KeyN') {
    const link = /** @type {HTMLAnchorElement | null} */ (document.querySelector('.new-topic'));
    if (link) run(() => { location.href = link.href; });
  } else if (event.shiftKey && event.key === 'Escape') {
    run(() => composer?.querySelector('textarea')?.focus());
  } else if (event.key === 'Escape' && composer?.dataset.generating) {
    run(() => /** @type {HTMLElement | null} */ (composer.querySelector('[data-action=stop]'))?.click());
  } else if (event.altKey && event.code === 'KeyR') {
    const buttons = document.querySelectorAll('.msg.assistant button[formaction$="/regenerate"]');
    const last = /** @type {HTMLButtonElement | undefined} */ (buttons[buttons.length - 1]);
    if (last && !composer?.dataset.generating) run(() => last.click());
  } else if (event.altKey && (event.key === 'ArrowUp' || event.key === 'ArrowDown')) {
    const links = Array.from(document.querySelectorAll('.assistant-link'));
    const at = links.findIndex((link) => link.classList.contains('current'));
    const next = /** @type {HTMLAnchorElement | undefined} */ (links[at + (event.key === 'ArrowUp' ? -1 : 1)]);
    if (next) run(() => { location.href = next.href; });
  }
});
shortcuts?.addEventListener('click', (event) => {
  // A click on the backdrop (the dialog itself, outside its box) closes it.
  if (event.target === shortcuts) shortcuts.close();
});

// The topic list's days (today, yesterday…) are counted in the browser's time zone.
document.cookie = `tz=${-new Date().getTimezoneOffset()}; path=/; max-age=31536000; samesite=lax`;

/** Reading answers aloud: one at a time; the second play of a message comes from its kept file. */
const speech = (() => {
  /** @type {{button: HTMLElement, audio: HTMLAudioElement} | null} */
  let playing = null;
  const stop = () => {
    if (!playing) return;
    playing.audio.pause();
    URL.revokeObjectURL(playing.audio.src);
    playing.button.classList.remove('active');
    playing.button.title = playing.button.getAttribute('aria-label') ?? '';
    playing = null;
  };
  const toggle = async (/** @type {HTMLElement} */ button) => {
    const same = playing?.button === button;
    stop();
    if (same) return;
    const article = button.closest('.msg');
    button.classList.add('active');
    try {
      const response = await fetch(`/messages/${article.dataset.id}/speech`, { method: 'POST' });
      if (!response.ok) {
        const error = await response.json().catch(() => null);
        toast(error?.error?.message ?? `${response.status}`);
        button.classList.remove('active');
        return;
      }
      const audio = new Audio(URL.createObjectURL(await response.blob()));
      playing = { button, audio };
      button.title = button.dataset.stop ?? '';
      audio.addEventListener('ended', stop);
      await audio.play();
    } catch {
      button.classList.remove('active');
      toast(text('i18nNetwork'));
    }
  };
  return { toggle };
})();

/**
 * Speaking instead of typing: the browser records, the server writes it down and the text goes
 * into the composer. Where recording is impossible or the server has no transcription, the
 * browser's own speech recognition (where it exists) does it.
 */
const microphone = (() => {
  const area = composer?.querySelector('textarea');
  /** @type {MediaRecorder | null} */
  let recorder = null;
  /** @type {any} */
  let recognition = null;
  const Recognition = /** @type {any} */ (window).SpeechRecognition || /** @type {any} */ (window).webkitSpeechRecognition;
  const insert = (/** @type {string} */ words) => {
    if (!words || !area) return;
    area.value = area.value ? `${area.value.trimEnd()} ${words}` : words;
    area.dispatchEvent(new Event('input'));
    area.focus();
  };
  const pressed = (/** @type {HTMLElement} */ button, /** @type {boolean} */ on) => {
    button.classList.toggle('active', on);
    button.setAttribute('aria-pressed', String(on));
  };
  const recognise = (/** @type {HTMLElement} */ button) => {
    if (!Recognition) return false;
    recognition = new Recognition();
    recognition.lang = document.documentElement.lang || 'en';
    recognition.interimResults = false;
    recognition.addEventListener('result', (/** @type {any} */ event) => {
      insert(Array.from(event.results).map((/** @type {any} */ result) => result[0].transcript).join(' '));
    });
    recognition.addEventListener('end', () => { recognition = null; pressed(button, false); });
    recognition.start();
    pressed(button, true);
    return true;
  };
  const record = async (/** @type {HTMLElement} */ button) => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      if (!recognise(button)) toast(button.dataset.denied ?? '');
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener('dataavailable', (event) => { if (event.data.size) chunks.push(event.data); });
    recorder.addEventListener('stop', async () => {
      for (const track of stream.getTracks()) track.stop();
      recorder = null;
      pressed(button, false);
      const body = new FormData();
      body.append('audio', new Blob(chunks, { type: chunks[0]?.type || 'audio/webm' }), 'speech.webm');
      try {
        const response = await fetch('/chat/transcribe', { method: 'POST', headers: { Accept: 'application/json' }, body });
        const data = await response.json().catch(() => null);
        if (response.ok) insert(data.text);
        else toast(data?.error?.message ?? `${response.status}`);
      } catch {
        toast(text('i18nNetwork'));
      }
    });
    recorder.start();
    pressed(button, true);
  };
  const toggle = (/** @type {HTMLElement} */ button) => {
    if (recorder) recorder.stop();
    else if (recognition) recognition.stop();
    else if (navigator.mediaDevices?.getUserMedia && window.MediaRecorder) record(button);
    else if (!recognise(button)) toast(button.dataset.denied ?? '');
  };
  return { toggle };
})();

// Drawing: the dialog's form goes as any form would; the button says it is working meanwhile.
document.querySelector('form[data-draw]')?.addEventListener('submit', (event) => {
  const form = /** @type {HTMLFormElement} */ (event.target);
  const button = form.querySelector('button.button');
  if (button) {
    button.disabled = true;
    button.textContent = form.dataset.working ?? button.textContent;
  }
});

// The composer's voice and drawing buttons need the script.
for (const button of document.querySelectorAll('.composer [data-action=mic][hidden], .composer [data-action=draw][hidden]')) {
  /** @type {HTMLElement} */ (button).hidden = false;
}
