/* The agent console's elements and state, shared by its modules. */

import { $ } from '../lib/dom.js';

export const ui = {
  search: $('#search'),
  busy: $('#busy'),
  took: $('#took'),
  expansions: $('#expansions'),
  empty: $('#empty-state'),
  message: $('#message'),
  results: $('#results'),
  trainerLink: $('#trainer-link'),
  view: $('#sop-view'),
  viewTitle: $('#sop-view-title'),
  viewMeta: $('#sop-view-meta'),
  viewBody: $('#sop-view-body'),
  viewClose: $('#sop-view-close'),
  backdrop: $('#sop-backdrop'),
};

export const state = {
  role: null,
  hits: [],
  queryId: null,
  weak: false, // the first result is a weak match
  emergency: false, // the first result is an emergency procedure for words with a danger signal
  learnedFirst: false, // the first result is there for words agents confirmed
  selected: -1,
  seq: 0, // sequence number of the latest request sent
  controller: null, // AbortController of the request in flight
  timer: null, // debounce timer
  composing: false, // an IME composition is in progress
  openAfterSearch: false,
  viewOpenFor: null, // sop_id shown in the drawer
  sopCache: new Map(), // `${id}@${version}` -> Promise<Sop>
};
