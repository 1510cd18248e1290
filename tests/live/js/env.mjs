// Where the tests point their clients: the mmsearch query service, never Elasticsearch itself.
// tests/live/test_js_clients.py sets these; to run by hand against a running service:
//   MMSEARCH_URL=http://127.0.0.1:8080 MMSEARCH_ALIAS=products ES_URL=http://127.0.0.1:9200 npm test
// ES_URL (optional) is only used to compare the proxy's answers with Elasticsearch's own.

export const SERVICE_URL = required('MMSEARCH_URL').replace(/\/+$/, '');
export const ALIAS = required('MMSEARCH_ALIAS');
export const ES_URL = process.env.ES_URL ? process.env.ES_URL.replace(/\/+$/, '') : null;

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: point it at the mmsearch query service (see tests/live/test_js_clients.py)`);
  }
  return value;
}
