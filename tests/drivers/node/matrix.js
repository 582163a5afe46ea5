// pgsim driver matrix: node-postgres (pg) and pg-cursor. Prints every
// result; tables are prefixed node_.
//
// Usage: node matrix.js CONNECTION_STRING
'use strict';

const { Client } = require('pg');
const Cursor = require('pg-cursor');

function show(label, value) {
  process.stdout.write(`${label}: ${JSON.stringify(value)}\n`);
}

function rowsOf(result) {
  return {
    command: result.command,
    rowCount: result.rowCount,
    fields: result.fields.map((f) => `${f.name}:${f.dataTypeID}`),
    rows: result.rows,
  };
}

function readBatch(cursor, n) {
  return new Promise((resolve, reject) => {
    cursor.read(n, (err, rows) => (err ? reject(err) : resolve(rows)));
  });
}

async function main(url) {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS node_items');
    await client.query(
      'CREATE TABLE node_items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2), ' +
        'seen date, tags text[], data jsonb)'
    );

    // parameters
    for (const [id, name, price, tags] of [
      [1, 'apple', '0.50', ['fruit', 'red']],
      [2, 'bread', '2.25', []],
      [3, 'cheese', null, null],
      [4, 'dates', '10.00', ['x,y', 'quote"d']],
    ]) {
      const r = await client.query(
        'INSERT INTO node_items (id, name, price, seen, tags, data) VALUES ($1, $2, $3, $4, $5, $6)',
        [id, name, price, id % 2 ? '2024-02-29' : null, tags, JSON.stringify({ id, ok: id > 2 })]
      );
      show(`insert ${id}`, { command: r.command, rowCount: r.rowCount });
    }
    show('select all', rowsOf(await client.query(
      'SELECT id, name, price, to_char(seen, \'YYYY-MM-DD\') AS seen, tags, data FROM node_items ORDER BY id')));
    show('params', rowsOf(await client.query('SELECT $1::int + $2::int AS sum, $3::text AS t, $4::text AS n', [40, 2, 'x', null])));
    show('array mode', (await client.query({ text: 'SELECT id, name FROM node_items WHERE id < $1 ORDER BY id', values: [3], rowMode: 'array' })).rows);
    show('simple multi', (await client.query('SELECT 1 AS a; SELECT 2 AS b')).map((r) => r.rows));

    // named prepared statements, executed repeatedly
    for (const id of [1, 2, 3, 4, 5]) {
      const r = await client.query({
        name: 'node_by_id',
        text: 'SELECT id, name, price FROM node_items WHERE id = $1',
        values: [id],
      });
      show(`named ${id}`, r.rows);
    }
    const again = await client.query({ name: 'node_count', text: 'SELECT count(*)::int AS n FROM node_items', values: [] });
    show('named count', again.rows);

    // an error, then the connection goes on
    try {
      await client.query('SELECT 1 / (id - id) FROM node_items');
    } catch (e) {
      show('error', { code: e.code, message: e.message });
    }
    try {
      await client.query({ name: 'node_bad', text: 'SELECT nope FROM node_items WHERE id = $1', values: [1] });
    } catch (e) {
      show('named error', { code: e.code, message: e.message });
    }
    show('after error', (await client.query('SELECT count(*)::int AS n FROM node_items')).rows);

    // a transaction that commits and one that rolls back
    await client.query('BEGIN');
    await client.query('UPDATE node_items SET price = price * 2 WHERE id = $1', [1]);
    await client.query('COMMIT');
    await client.query('BEGIN');
    await client.query('DELETE FROM node_items WHERE id = $1', [2]);
    try {
      await client.query('INSERT INTO node_items (id, name) VALUES ($1, $2)', [1, 'duplicate']);
    } catch (e) {
      show('transaction error', { code: e.code, message: e.message });
    }
    await client.query('ROLLBACK');
    show('after transactions', (await client.query('SELECT id, price FROM node_items ORDER BY id')).rows);

    // pg-cursor: batches inside a transaction (a row-limited Execute each)
    await client.query('BEGIN');
    const cursor = client.query(new Cursor('SELECT g AS n FROM generate_series(1, $1::int) AS g ORDER BY g', [6]));
    for (;;) {
      const rows = await readBatch(cursor, 3); // 6 rows: an exact multiple of the batch
      show('cursor batch', rows);
      if (rows.length === 0) break;
    }
    await new Promise((resolve) => cursor.close(resolve));
    const cursor2 = client.query(new Cursor('SELECT id, name FROM node_items ORDER BY id'));
    show('cursor2 batch', await readBatch(cursor2, 3));
    show('cursor2 batch', await readBatch(cursor2, 3));
    await new Promise((resolve) => cursor2.close(resolve));
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  process.stdout.write('done\n');
}

main(process.argv[2]).catch((e) => {
  process.stdout.write(`fatal: ${e.code || ''} ${e.message}\n`);
  process.exitCode = 1;
});
