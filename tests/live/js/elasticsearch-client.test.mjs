// The official JavaScript client (@elastic/elasticsearch), as a legacy Node app would use it,
// pointed at the mmsearch service instead of Elasticsearch.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { Client, errors } from '@elastic/elasticsearch';

import { ALIAS, ES_URL, SERVICE_URL } from './env.mjs';

const client = new Client({ node: SERVICE_URL, requestTimeout: 120_000, maxRetries: 0 });
const direct = ES_URL ? new Client({ node: ES_URL, requestTimeout: 60_000 }) : null;
const MISSING_INDEX = 'mmsearch-js-no-such-index';
const WRITE_PROBE = 'mmsearch-js-write-probe';

after(async () => {
  if (direct) { // a proxy that wrongly relayed the write probe must not leave an index behind
    await direct.indices.delete({ index: WRITE_PROBE }, { ignore: [404] });
  }
  await client.close();
  await direct?.close();
});

function assertHybrid(response, what) {
  assert.ok(response._hybrid, `${what}: no _hybrid metadata, so it was not served as hybrid: ${JSON.stringify(response).slice(0, 500)}`);
  for (const leg of ['bm25', 'text_text']) {
    assert.ok(response._hybrid.legs.includes(leg), `${what}: leg ${leg} missing from ${JSON.stringify(response._hybrid)}`);
  }
}

function assertHitsWithSource(response, what, size) {
  const hits = response.hits.hits;
  assert.equal(hits.length, size, `${what}: ${hits.length} hits`);
  for (const hit of hits) {
    assert.equal(typeof hit._id, 'string');
    assert.ok(hit._source && typeof hit._source.title === 'string', `${what}: hit without _source: ${JSON.stringify(hit)}`);
  }
}

function assertEsError(item, what) {
  assert.ok(item.status >= 400 && item.status < 500, `${what}: status ${item.status}: ${JSON.stringify(item)}`);
  assert.ok(item.error, `${what}: no error object: ${JSON.stringify(item)}`);
  assert.equal(typeof item.error.type, 'string');
  assert.equal(typeof item.error.reason, 'string');
  assert.ok(Array.isArray(item.error.root_cause) && item.error.root_cause.length > 0,
    `${what}: root_cause: ${JSON.stringify(item.error)}`);
  assert.equal(item.hits, undefined);
}

describe('@elastic/elasticsearch against the service', () => {
  test('search is hybrid: _hybrid legs, hits with _source, app filters and aggregations kept', async () => {
    const body = {
      query: { bool: { must: [{ match: { title: 'blue shirt' } }], filter: [{ term: { gender: 'Men' } }] } },
      aggs: { colours: { terms: { field: 'base_colour' } } },
      size: 8,
    };
    const response = await client.search({ index: ALIAS, ...body }, { meta: true });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['x-elastic-product'], 'Elasticsearch');
    const result = response.body;
    assertHybrid(result, 'search');
    assertHitsWithSource(result, 'search', 8);
    assert.ok(result.hits.hits.every((hit) => hit._source.gender === 'Men'), 'the filter applies to every leg');
    // The app's aggregation answers in Elasticsearch's shape, over the lexical matches or (the
    // service's choice) the fused candidates: either way a set of at most hits.total documents.
    const { buckets, sum_other_doc_count: other } = result.aggregations.colours;
    assert.ok(buckets.length > 0 && buckets.every((b) => typeof b.key === 'string' && b.doc_count > 0), JSON.stringify(buckets));
    assert.ok(buckets.reduce((sum, b) => sum + b.doc_count, other) <= result.hits.total.value);
    if (direct) {
      const plain = await direct.search({ index: ALIAS, ...body });
      assert.ok(result.hits.total.value >= plain.hits.total.value);
    }
  });

  test('count is passed through', async () => {
    const all = await client.count({ index: ALIAS });
    const shirts = await client.count({ index: ALIAS, query: { match: { title: 'shirt' } } });
    assert.ok(all.count > 0 && shirts.count > 0 && shirts.count < all.count, JSON.stringify({ all, shirts }));
    assert.equal(all._hybrid, undefined);
    if (direct) {
      assert.equal(all.count, (await direct.count({ index: ALIAS })).count);
      assert.equal(shirts.count, (await direct.count({ index: ALIAS, query: { match: { title: 'shirt' } } })).count);
    }
  });

  test('msearch (POST /_msearch): hybrid items, a per-item error in ES shape, order kept', async () => {
    const result = await client.msearch({
      searches: [
        { index: ALIAS }, { query: { match: { title: 'blue shirt' } }, size: 5 },
        { index: MISSING_INDEX }, { query: { match: { title: 'shirt' } }, size: 5 },
        { index: ALIAS }, { query: { match: { title: 'red dress' } }, size: 3 },
      ],
    });
    assert.equal(typeof result.took, 'number');
    assert.equal(result.responses.length, 3, JSON.stringify(result).slice(0, 1000));
    const [blueShirt, missing, redDress] = result.responses;
    assert.equal(blueShirt.status, 200, JSON.stringify(blueShirt).slice(0, 500));
    assertHybrid(blueShirt, 'item 0');
    assertHitsWithSource(blueShirt, 'item 0', 5);
    assertEsError(missing, 'item 1 (an index that does not exist)');
    assert.equal(redDress.status, 200, JSON.stringify(redDress).slice(0, 500));
    assertHybrid(redDress, 'item 2');
    assertHitsWithSource(redDress, 'item 2', 3);
    if (direct) { // order kept: each item answers its own query
      const plain = await direct.search({ index: ALIAS, query: { match: { title: 'red dress' } }, size: 100 });
      const lexical = new Set(plain.hits.hits.map((hit) => hit._id));
      assert.ok(redDress.hits.hits.some((hit) => lexical.has(hit._id)), 'item 2 answers "red dress"');
    }
  });

  test('msearch (POST /<alias>/_msearch): default index, an unimprovable item passes through', async () => {
    const result = await client.msearch({
      index: ALIAS,
      searches: [
        {}, { query: { match: { title: 'white shirt' } }, size: 4 },
        {}, { query: { match: { title: 'shirt' } }, sort: [{ year: 'desc' }], size: 4 },
      ],
    });
    assert.equal(result.responses.length, 2, JSON.stringify(result).slice(0, 1000));
    const [hybrid, sorted] = result.responses;
    assert.equal(hybrid.status, 200, JSON.stringify(hybrid).slice(0, 500));
    assertHybrid(hybrid, 'item 0');
    assertHitsWithSource(hybrid, 'item 0', 4);
    assert.equal(sorted.status, 200, JSON.stringify(sorted).slice(0, 500));
    assert.equal(sorted._hybrid, undefined, 'a sorted search is not improvable: Elasticsearch answers it');
    if (direct) {
      const plain = await direct.search({ index: ALIAS, query: { match: { title: 'shirt' } }, sort: [{ year: 'desc' }], size: 4 });
      assert.deepEqual(sorted.hits.hits.map((hit) => hit._id), plain.hits.hits.map((hit) => hit._id));
    }
  });

  test('scroll round trip (search?scroll, POST and DELETE /_search/scroll) is forwarded unchanged', async () => {
    const query = { match: { title: 'shirt' } };
    const first = await client.search({ index: ALIAS, scroll: '1m', size: 20, query });
    assert.equal(first._hybrid, undefined, 'a scroll is not improvable');
    assert.equal(typeof first._scroll_id, 'string');
    const ids = first.hits.hits.map((hit) => hit._id);
    let scrollId = first._scroll_id;
    for (let page = 0; page < 100; page += 1) {
      const next = await client.scroll({ scroll_id: scrollId, scroll: '1m' });
      assert.equal(next._hybrid, undefined);
      scrollId = next._scroll_id ?? scrollId;
      if (next.hits.hits.length === 0) break;
      ids.push(...next.hits.hits.map((hit) => hit._id));
    }
    assert.equal(new Set(ids).size, ids.length, 'no document twice');
    assert.equal(ids.length, first.hits.total.value, 'every match once');
    const cleared = await client.clearScroll({ scroll_id: scrollId });
    assert.equal(cleared.succeeded, true, JSON.stringify(cleared));
    if (direct) {
      assert.equal(ids.length, (await direct.count({ index: ALIAS, query })).count);
    }
  });

  test('helpers.scrollSearch walks every match through the service', async () => {
    const query = { match: { title: 'shirt' } };
    const ids = [];
    for await (const page of client.helpers.scrollSearch({ index: ALIAS, scroll: '1m', size: 25, query })) {
      assert.equal(page.body._hybrid, undefined);
      ids.push(...page.documents.map((doc) => doc.title));
    }
    const expected = direct ? (await direct.count({ index: ALIAS, query })).count
      : (await client.count({ index: ALIAS, query })).count;
    assert.equal(ids.length, expected);
  });

  test('a write is refused with 403 in Elasticsearch\'s error shape', async () => {
    await assert.rejects(
      client.index({ index: WRITE_PROBE, document: { title: 'must not be written' } }),
      (error) => {
        assert.ok(error instanceof errors.ResponseError, String(error));
        assert.equal(error.meta.statusCode, 403, JSON.stringify(error.body));
        assert.equal(error.body.status, 403);
        assert.equal(error.body.error.type, 'security_exception');
        assert.equal(typeof error.body.error.reason, 'string');
        assert.equal(error.body.error.root_cause[0].type, 'security_exception');
        return true;
      },
    );
    if (direct) {
      assert.equal(await direct.indices.exists({ index: WRITE_PROBE }), false, 'nothing was written');
    }
  });
});
