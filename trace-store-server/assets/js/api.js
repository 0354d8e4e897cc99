// The JSON API of /work/API.md, with the bearer token a protected server asks for.

const TOKEN_KEY = 'trace-store-token';

/** Reads `#token=...` once, keeps it for this tab, and removes it from the address bar. */
export function captureToken() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(history.state, '', location.pathname + location.search);
}

/** An API failure: the server's error kind and message, and the HTTP status. */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', `the server did not answer (${e.message})`);
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!response.ok) {
    const error = json && json.error;
    if (response.status === 401) {
      throw new ApiError(401, 'unauthorized',
        'this server needs a token: open the viewer as /#token=YOUR_TOKEN');
    }
    throw new ApiError(response.status, error ? error.kind : 'http',
      error ? error.message : `HTTP ${response.status}`);
  }
  return json;
}

const enc = encodeURIComponent;

function query(params) {
  const search = params instanceof URLSearchParams ? params : new URLSearchParams(params);
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const api = {
  config: () => call('GET', '/api/config'),
  traces: (params) => call('GET', `/api/traces${query(params)}`),
  count: (params) => call('GET', `/api/count${query(params)}`),
  trace: (runId) => call('GET', `/api/traces/${enc(runId)}`),
  deleteTrace: (runId) => call('DELETE', `/api/traces/${enc(runId)}`),
  addScore: (runId, score) => call('POST', `/api/traces/${enc(runId)}/scores`, score),
  stats: (params) => call('GET', `/api/stats${query(params)}`),
  sessions: (params) => call('GET', `/api/sessions${query(params)}`),
  session: (sessionId) => call('GET', `/api/sessions/${enc(sessionId)}`),
  purge: (body) => call('POST', '/api/purge', body),
};

/** The page path of a trace, a session, ... (what links and the router use). */
export const paths = {
  trace: (runId) => `/trace/${enc(runId)}`,
  session: (sessionId) => `/session/${enc(sessionId)}`,
};
