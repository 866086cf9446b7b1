// The study browser: QIDO-RS searches, one page of studies at a time (limit and
// offset; the server's 299 warning says whether there is a next page), a
// study's series with their thumbnails, ZIP downloads and the viewer.
// Every URL is relative to the page, so the page works wherever it is mounted.
'use strict';

const ROOT = document.querySelector('meta[name="dicomweb-root"]').content.replace(/\/$/, '');
const VIEWER = 'viewer';
const STUDY_FIELDS = [
  '00080020', '00080030', '00080050', '00080061', '00081030',
  '00100010', '00100020', '00201206', '00201208',
];
const SERIES_FIELDS = ['0008103E', '00200011', '00080060', '00201209', '00080021'];

const form = document.getElementById('search');
const statusLine = document.getElementById('status');
const tbody = document.querySelector('#studies tbody');
const previous = document.getElementById('previous');
const next = document.getElementById('next');
const range = document.getElementById('range');

let offset = 0;
let hasNext = false;

function value(row, tag) {
  const element = row[tag];
  const first = element && element.Value && element.Value[0];
  if (first === undefined || first === null) return '';
  if (typeof first === 'object') return personName(first.Alphabetic || '');
  return String(first);
}

function values(row, tag) {
  const element = row[tag];
  return element && element.Value ? element.Value.join(', ') : '';
}

function personName(text) {
  const [family = '', given = ''] = text.split('^');
  return given ? `${family}, ${given}` : family;
}

function displayDate(da) {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da;
}

function queryDate(iso) {
  return iso ? iso.replaceAll('-', '') : '';
}

/** A matching value as typed, or `*value*` (substring) when it has no wildcard. */
function contains(text) {
  const trimmed = text.trim();
  if (!trimmed) return '';
  return /[*?]/.test(trimmed) ? trimmed : `*${trimmed}*`;
}

function searchParameters() {
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const key of ['PatientName', 'PatientID', 'AccessionNumber']) {
    const matching = contains(data.get(key) || '');
    if (matching) params.set(key, matching);
  }
  const modality = (data.get('ModalitiesInStudy') || '').trim().toUpperCase();
  if (modality) params.set('ModalitiesInStudy', modality);
  const from = queryDate(data.get('from'));
  const to = queryDate(data.get('to'));
  if (from || to) params.set('StudyDate', from === to ? from : `${from}-${to}`);
  params.set('limit', data.get('limit') || '25');
  params.set('offset', String(offset));
  params.set('includefield', STUDY_FIELDS.join(','));
  return params;
}

async function qido(path) {
  const response = await fetch(`${ROOT}/${path}`, { headers: { Accept: 'application/dicom+json' } });
  if (response.status === 204) return { rows: [], warning: '' };
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail || detail;
    } catch {
      // not our JSON error body
    }
    throw new Error(`${response.status}: ${detail}`);
  }
  return { rows: await response.json(), warning: response.headers.get('Warning') || '' };
}

function studyUrl(study) {
  return `${ROOT}/studies/${study}`;
}

function viewerUrl(study, series) {
  const params = new URLSearchParams({ StudyInstanceUIDs: study });
  if (series) params.set('SeriesInstanceUIDs', series);
  return `${VIEWER}?${params}`;
}

function zipUrl(path) {
  return `${path}?accept=${encodeURIComponent('application/zip')}`;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, val] of Object.entries(attributes)) {
    if (key === 'text') node.textContent = val;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), val);
    else node.setAttribute(key, val);
  }
  node.append(...children);
  return node;
}

function link(text, href, attributes = {}) {
  return element('a', { class: 'action', href, text, ...attributes });
}

async function search() {
  statusLine.classList.remove('error');
  statusLine.textContent = 'Searching…';
  const params = searchParameters();
  let answer;
  try {
    answer = await qido(`studies?${params}`);
  } catch (error) {
    statusLine.classList.add('error');
    statusLine.textContent = `The search failed (${error.message}).`;
    return;
  }

  // The server says when more rows match: "… requested with offset=N."
  hasNext = /offset=\d+/.test(answer.warning);
  tbody.replaceChildren(...answer.rows.map(studyRow));
  const first = answer.rows.length ? offset + 1 : 0;
  const last = offset + answer.rows.length;
  range.textContent = answer.rows.length ? `Studies ${first}–${last}` : '';
  statusLine.textContent = answer.rows.length
    ? `${answer.rows.length} ${answer.rows.length === 1 ? 'study' : 'studies'} on this page` +
      (hasNext ? ', more on the next.' : '.')
    : 'No study matches.';
  previous.disabled = offset === 0;
  next.disabled = !hasNext;
}

function studyRow(row) {
  const study = value(row, '0020000D');
  const toggle = element('button', {
    type: 'button',
    class: 'expand',
    'aria-expanded': 'false',
    text: 'Series',
    title: 'Show the series of this study',
  });
  const tr = element(
    'tr',
    { class: 'study', tabindex: '0', 'data-study': study },
    element('td', { text: value(row, '00100010') }),
    element('td', { text: value(row, '00100020') }),
    element('td', { class: 'date', text: displayDate(value(row, '00080020')) }),
    element('td', { text: values(row, '00080061') }),
    element('td', { text: value(row, '00081030') }),
    element('td', { text: value(row, '00080050') }),
    element('td', { class: 'num', text: value(row, '00201206') }),
    element('td', { class: 'num', text: value(row, '00201208') }),
    element(
      'td',
      {},
      element(
        'span',
        { class: 'actions' },
        toggle,
        link('Open', viewerUrl(study), { class: 'action open', title: 'Open in the viewer' }),
        link('ZIP', zipUrl(studyUrl(study)), {
          class: 'action zip',
          download: `${study}.zip`,
          title: 'Download the study as a ZIP of DICOM files',
        })
      )
    )
  );
  toggle.addEventListener('click', (event) => {
    event.stopPropagation();
    toggleSeries(tr, toggle, study);
  });
  tr.addEventListener('keydown', (event) => {
    if (event.target !== tr) return;
    if (event.key === 'Enter') window.location.href = viewerUrl(study);
    else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const rows = [...tbody.querySelectorAll('tr.study')];
      const at = rows.indexOf(tr) + (event.key === 'ArrowDown' ? 1 : -1);
      if (rows[at]) rows[at].focus();
    }
  });
  tr.addEventListener('dblclick', () => {
    window.location.href = viewerUrl(study);
  });
  return tr;
}

async function toggleSeries(tr, toggle, study) {
  const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains('detail');
  if (open) {
    tr.nextElementSibling.remove();
    toggle.setAttribute('aria-expanded', 'false');
    return;
  }
  const cell = element('td', { colspan: '9', text: 'Loading series…' });
  tr.after(element('tr', { class: 'detail' }, cell));
  toggle.setAttribute('aria-expanded', 'true');
  try {
    const [{ rows }, sizes] = await Promise.all([
      qido(`studies/${study}/series?includefield=${SERIES_FIELDS.join(',')}`),
      storedSizes(study),
    ]);
    rows.sort((a, b) => Number(value(a, '00200011')) - Number(value(b, '00200011')));
    const total = sizes ? `${humanSize(sizes.study)} stored in all. ` : '';
    cell.replaceChildren(
      element('p', { class: 'study-size', text: `${total}${rows.length} series:` }),
      element('ul', { class: 'series' }, ...rows.map((r) => seriesCard(study, r, sizes)))
    );
  } catch (error) {
    cell.textContent = `The series could not be listed (${error.message}).`;
  }
}

// The bytes the archive holds for a study and its series (null when unknown:
// the sizes are a convenience, the list shows without them).
async function storedSizes(study) {
  try {
    const response = await fetch(`browser/sizes/${encodeURIComponent(study)}`);
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

function humanSize(bytes) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < units.length - 1) {
    size /= 1000;
    unit += 1;
  }
  return `${size >= 100 || unit === 0 ? Math.round(size) : size.toFixed(1)} ${units[unit]}`;
}

function seriesCard(study, row, sizes) {
  const series = value(row, '0020000E');
  const path = `${studyUrl(study)}/series/${series}`;
  const number = value(row, '00200011');
  const description = value(row, '0008103E') || 'Series';
  const count = value(row, '00201209');
  const title = number ? `${number} · ${description}` : description;
  return element(
    'li',
    { 'data-series': series },
    element('img', {
      src: `${path}/thumbnail?accept=${encodeURIComponent('image/jpeg')}`,
      alt: `Thumbnail of ${title}`,
      loading: 'lazy',
      width: '160',
      height: '160',
    }),
    element('span', { class: 'title', text: title }),
    element('span', {
      class: 'facts',
      text: [
        value(row, '00080060'),
        count && `${count} instance${count === '1' ? '' : 's'}`,
        sizes && series in sizes.series && humanSize(sizes.series[series]),
      ]
        .filter(Boolean)
        .join(' · '),
    }),
    element(
      'span',
      { class: 'links' },
      link('Open', viewerUrl(study, series), { title: 'Open this series in the viewer' }),
      link('ZIP', zipUrl(path), {
        download: `${series}.zip`,
        title: 'Download the series as a ZIP of DICOM files',
      })
    )
  );
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  offset = 0;
  search();
});
form.addEventListener('reset', () => {
  offset = 0;
  setTimeout(search);
});
previous.addEventListener('click', () => {
  offset = Math.max(0, offset - Number(new FormData(form).get('limit') || 25));
  search();
});
next.addEventListener('click', () => {
  offset += Number(new FormData(form).get('limit') || 25);
  search();
});
if (document.querySelector('meta[name="viewer"]').content === 'missing') {
  document.getElementById('viewer-hint').hidden = false;
}
search();
