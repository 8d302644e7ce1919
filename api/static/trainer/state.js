/* The trainer workspace's elements and state, shared by its modules. */

import { $ } from '../lib/dom.js';

export const state = {
  role: null,
  auth: true,
  sops: [], // summaries from GET /v1/sops
  deleted: [], // GET /v1/deleted-sops: SOPs whose latest version deletes them
  selected: null, // sop_id being edited (null = new document)
  base: null, // the version the editor content is based on (base_version for PUT)
  exists: false, // the selected id is live in the catalog
  history: [],
  historyDenied: false, // the key may not read history (an agent's): the panel says so
  loadedText: '', // editor content as loaded (to detect unpublished edits)
  drafts: new Map(), // sop_id -> {text, base}: unpublished edits kept when switching documents
  loadToken: 0,
  gapsLoaded: false,
  name: '', // the caller's name (whoami): the author of their publishes in the history
  company: '', // KB_COMPANY_NAME, from whoami: the new-SOP template's greeting names it
};

export const ui = {
  banner: $('#role-banner'),
  docList: $('#doc-list'),
  docFilter: $('#doc-filter'),
  docCategory: $('#doc-category'),
  docCount: $('#doc-count'),
  docTitle: $('#doc-title'),
  docMeta: $('#doc-meta'),
  docNote: $('#doc-note'),
  newBtn: $('#new-btn'),
  editor: $('#editor'),
  editorStatus: $('#editor-status'),
  publishBtn: $('#publish-btn'),
  minorCheck: $('#minor-check'),
  previewBtn: $('#preview-btn'),
  historyBtn: $('#history-btn'),
  deleteBtn: $('#delete-btn'),
  publishMsg: $('#publish-msg'),
  lower: $('#lower-pane'),
  historyPane: $('.doc-history'),
  historyList: $('#history-list'),
  historyNote: $('#history-note'),
  hitForm: $('#hit-form'),
  hitQuery: $('#hit-query'),
  hitAudience: $('#hit-audience'),
  hitTopk: $('#hit-topk'),
  hitRun: $('#hit-run'),
  hitResults: $('#hit-results'),
  gapRange: $('#gap-range'),
  gapRefresh: $('#gap-refresh'),
  exportCsv: $('#export-csv'),
  gapSummary: $('#gap-summary'),
  gapReport: $('#gap-report'),
};

export const summaryOf = (id) => state.sops.find((s) => s.sop_id === id) || null;
export const sopPath = (id) => `/v1/sops/${encodeURIComponent(id)}`;
