// Searchkit, a frontend search adapter that speaks _msearch, with its connection host set to the
// mmsearch service: the browser-side InstantSearch client (@searchkit/instantsearch-client over a
// Searchkit instance) and the Node API (@searchkit/api handleRequest).
//
// What Searchkit 4.16 sends (captured with a logging HTTP server; ESTransporter in
// node_modules/searchkit/dist/index.mjs), for one InstantSearch request with query "blue shirt":
//
//   POST /_msearch            (always the root endpoint; the index is in each header line)
//   content-type: application/json      (not application/x-ndjson; accept: */*)
//   {"index":"<alias>"}
//   {"aggs":{"base_colour":{"terms":{"field":"base_colour","size":10}},"gender":{"terms":{"field":"gender","size":10}}},
//    "query":{"bool":{"filter":[],
//      "must":{"bool":{"should":[
//        {"bool":{"should":[
//          {"multi_match":{"query":"blue shirt","fields":["title"],"fuzziness":"AUTO:4,8"}},
//          {"multi_match":{"query":"blue shirt","fields":["title"],"type":"bool_prefix"}}]}},
//        {"multi_match":{"query":"blue shirt","type":"phrase","fields":["title"]}}]}}}},
//    "size":10,"from":0,"_source":{"includes":["title","gender","base_colour"]}}
//   (each JSON on one line, every line ending in "\n")
//
// So the user's text sits in bool.must (an object, not a list) -> bool.should -> multi_match,
// twice nested in should. A refinement (facetFilters [["gender:Men"]]) adds
// "filter":[{"bool":{"should":[{"term":{"gender":"Men"}}]}}], and InstantSearch's extra request for
// the disjunctive facet has "size":0 with only that facet's aggregation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import API from '@searchkit/api';
import InstantSearchClient from '@searchkit/instantsearch-client';
import Searchkit from 'searchkit';

import { ALIAS, SERVICE_URL } from './env.mjs';

// Searchkit talks HTTP with the global fetch: record what it sends and what comes back.
const exchanges = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, init = {}) => {
  const response = await realFetch(url, init);
  const text = await response.clone().text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  exchanges.push({ method: init.method, url: String(url), headers: init.headers, request: init.body, status: response.status, body });
  return response;
};

const config = {
  connection: { host: SERVICE_URL },
  search_settings: {
    search_attributes: ['title'],
    result_attributes: ['title', 'gender', 'base_colour'],
    facet_attributes: [
      { attribute: 'gender', field: 'gender', type: 'string' },
      { attribute: 'base_colour', field: 'base_colour', type: 'string' },
    ],
  },
};

function search(query, extra = {}) {
  return { indexName: ALIAS, params: { query, hitsPerPage: 10, page: 0, facets: ['base_colour', 'gender'], ...extra } };
}

/** The raw _msearch exchange behind one Searchkit call: sent to the service, answered without error. */
function lastExchange(t, items) {
  const exchange = exchanges.at(-1);
  assert.ok(exchange, 'Searchkit sent no request');
  t.diagnostic(`${exchange.method} ${exchange.url}\n${exchange.request}`);
  assert.equal(exchange.method, 'POST');
  assert.equal(exchange.url, `${SERVICE_URL}/_msearch`);
  const lines = exchange.request.split('\n');
  assert.equal(lines.at(-1), '', 'NDJSON ends with a newline');
  assert.equal(lines.length, 2 * items + 1);
  assert.equal(exchange.status, 200, JSON.stringify(exchange.body).slice(0, 1000));
  assert.equal(exchange.body.responses.length, items, JSON.stringify(exchange.body).slice(0, 1000));
  for (const item of exchange.body.responses) {
    assert.equal(item.error, undefined, JSON.stringify(item).slice(0, 1000));
    assert.equal(item.status, 200);
  }
  return exchange;
}

function assertFacet(result, attribute) {
  const values = result.facets?.[attribute];
  assert.ok(values && Object.keys(values).length > 0, `no ${attribute} facet: ${JSON.stringify(result.facets)}`);
  assert.ok(Object.values(values).every((count) => Number.isInteger(count) && count > 0));
  return values;
}

describe('Searchkit against the service', () => {
  test('InstantSearch client: "blue shirt" gives hits and facets', async (t) => {
    const searchClient = InstantSearchClient(new Searchkit(config));
    const errors = [];
    const consoleError = console.error;
    console.error = (...args) => errors.push(args.join(' ')); // the client logs failures and answers empty
    let results;
    try {
      ({ results } = await searchClient.search([search('blue shirt')]));
    } finally {
      console.error = consoleError;
    }
    lastExchange(t, 1);
    assert.deepEqual(errors, []);
    const [result] = results;
    assert.ok(result.nbHits > 0 && result.hits.length === 10, JSON.stringify(result).slice(0, 1000));
    for (const hit of result.hits) {
      assert.equal(typeof hit.objectID, 'string');
      assert.equal(typeof hit.title, 'string');
      assert.ok(typeof hit.gender === 'string' && typeof hit.base_colour === 'string', JSON.stringify(hit));
    }
    assertFacet(result, 'gender');
    assertFacet(result, 'base_colour');
  });

  test('Searchkit API: a gender refinement with its disjunctive facet request', async (t) => {
    const api = API(config);
    const { results } = await api.handleRequest([
      search('shirt', { facetFilters: [['gender:Men']] }),
      search('shirt', { hitsPerPage: 0, facets: ['gender'], analytics: false, clickAnalytics: false }),
    ]);
    lastExchange(t, 2);
    const [refined, disjunctive] = results;
    assert.ok(refined.nbHits > 0 && refined.hits.length > 0, JSON.stringify(refined).slice(0, 1000));
    assert.ok(refined.hits.every((hit) => hit.gender === 'Men'), 'the refinement filters every hit');
    assert.deepEqual(Object.keys(assertFacet(refined, 'gender')), ['Men']);
    assertFacet(refined, 'base_colour');
    const genders = assertFacet(disjunctive, 'gender');
    assert.ok('Men' in genders && Object.keys(genders).length > 1, JSON.stringify(genders));
  });

  test('Searchkit\'s text query is served hybrid (_hybrid on the raw _msearch item)', async (t) => {
    await API(config).handleRequest([search('blue shirt', { facetFilters: [['gender:Men']] })]);
    const [item] = lastExchange(t, 1).body.responses;
    assert.ok(item._hybrid, `not hybrid: the proxy did not find the user text in Searchkit's query shape: ${JSON.stringify(item).slice(0, 300)}`);
    assert.ok(item._hybrid.legs.includes('bm25') && item._hybrid.legs.includes('text_text'), JSON.stringify(item._hybrid));
    assert.ok(item.hits.hits.every((hit) => hit._source.gender === 'Men'), 'the refinement applies to the vector legs');
  });
});
