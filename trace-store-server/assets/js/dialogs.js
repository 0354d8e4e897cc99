// Confirmation dialogs: nothing is deleted without the user saying so twice.

import { api } from './api.js';
import { h, toast } from './dom.js';
import * as fmt from './format.js';

function modal(...children) {
  const dialog = h('dialog', { class: 'dialog' }, children);
  document.body.appendChild(dialog);
  dialog.addEventListener('close', () => dialog.remove());
  dialog.showModal();
  return dialog;
}

/** Resolves true when the user confirms. */
export function confirmDialog({ title, message, confirm = 'OK', danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h('button', { type: 'button', class: danger ? 'danger' : 'primary', id: 'confirm-yes', text: confirm,
      on: { click: () => { answer = true; dialog.close(); } } });
    const no = h('button', { type: 'button', class: 'ghost', text: 'Cancel', on: { click: () => dialog.close() } });
    const dialog = modal(h('h2', { text: title }), h('p', { text: message }), h('div', { class: 'dialog-actions' }, no, yes));
    dialog.addEventListener('close', () => resolve(answer));
    no.focus();
  });
}

/** Purge: choose a policy, see what it would delete (a dry run), then confirm. */
export function purgeDialog(onDone) {
  const olderThan = h('input', { type: 'text', name: 'older_than', placeholder: '30d', autocomplete: 'off' });
  const keep = h('input', { type: 'number', name: 'keep', min: '0', placeholder: '10000' });
  const result = h('p', { class: 'purge-result', 'aria-live': 'polite' });
  let checked = null;
  const policy = () => {
    const body = {};
    if (olderThan.value.trim()) body.older_than = olderThan.value.trim();
    if (keep.value.trim()) body.keep = Number(keep.value);
    return body;
  };
  const run = h('button', { type: 'button', class: 'danger', id: 'purge-run', disabled: true, text: 'Delete them' });
  const check = h('button', { type: 'button', class: 'primary', id: 'purge-check', text: 'Count' });
  const invalidate = () => { checked = null; run.disabled = true; result.textContent = ''; };
  olderThan.addEventListener('input', invalidate);
  keep.addEventListener('input', invalidate);
  check.addEventListener('click', async () => {
    const body = policy();
    if (!Object.keys(body).length) { result.textContent = 'Give an age, a number to keep, or both.'; return; }
    try {
      const r = await api.purge({ ...body, dry_run: true });
      const total = r.deleted_by_age + r.deleted_by_count;
      result.textContent = total
        ? `This would delete ${fmt.count(total)} run${total === 1 ? '' : 's'} (${fmt.count(r.deleted_by_age)} by age, ${fmt.count(r.deleted_by_count)} by count).`
        : 'Nothing to delete with this policy.';
      checked = JSON.stringify(body);
      run.disabled = total === 0;
    } catch (e) {
      result.textContent = e.message;
    }
  });
  run.addEventListener('click', async () => {
    const body = policy();
    if (JSON.stringify(body) !== checked) { invalidate(); return; }
    try {
      const r = await api.purge({ ...body, dry_run: false });
      const total = r.deleted_by_age + r.deleted_by_count;
      toast(`Purged ${fmt.count(total)} run${total === 1 ? '' : 's'}`);
      dialog.close();
      onDone();
    } catch (e) {
      result.textContent = e.message;
    }
  });
  const dialog = modal(
    h('h2', { text: 'Purge old runs' }),
    h('p', { class: 'muted', text: 'Keep only recent runs. Count first: nothing is deleted until you confirm.' }),
    h('label', { class: 'field' }, h('span', { text: 'Delete runs older than (e.g. 30d, 12h)' }), olderThan),
    h('label', { class: 'field' }, h('span', { text: 'Keep at most this many newest runs' }), keep),
    result,
    h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'ghost', text: 'Cancel', on: { click: () => dialog.close() } }), check, run));
  olderThan.focus();
}
