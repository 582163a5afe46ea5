-- pgsim driver matrix: psql. Fed on stdin (`psql -X -e -v ON_ERROR_STOP=0 -f -`),
-- so the transcript names no path. Tables are prefixed psql_.
\pset pager off
DROP TABLE IF EXISTS psql_items, psql_copy;
CREATE TABLE psql_items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2), tags text[]);
INSERT INTO psql_items VALUES
  (1, 'apple', 0.50, '{fruit,red}'),
  (2, 'bread', 2.25, '{bakery}'),
  (3, 'cheese', 7.80, NULL),
  (4, 'dates', NULL, '{}');

-- simple queries
SELECT id, name, price, tags FROM psql_items ORDER BY id;
SELECT count(*) AS n, sum(price) AS total FROM psql_items;
SELECT 'a''b' AS quoted, NULL::text AS nothing, 1.5::float8 AS f, true AS t, '\x0102'::bytea AS b;

-- a multi-statement query (one simple Query message)
SELECT 1 AS one\; SELECT 'two' AS two\; UPDATE psql_items SET price = price + 1 WHERE id = 1;
SELECT id, price FROM psql_items WHERE id = 1;

-- an error inside a transaction, then ROLLBACK
BEGIN;
UPDATE psql_items SET name = 'apricot' WHERE id = 1;
SELECT id / 0 FROM psql_items WHERE id = 1;
SELECT 'ignored until rollback';
ROLLBACK;
SELECT id, name FROM psql_items WHERE id = 1;
SELECT no_such_column FROM psql_items;

-- COPY out, in text and csv, both as COPY ... TO STDOUT and \copy
COPY (SELECT id, name, price FROM psql_items ORDER BY id) TO STDOUT;
COPY (SELECT id, name, tags FROM psql_items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER true);
\copy (SELECT id, name FROM psql_items ORDER BY id) TO STDOUT WITH (FORMAT csv)

-- COPY in, text then csv
CREATE TABLE psql_copy (id int, label text, amount numeric);
COPY psql_copy FROM STDIN;
10	ten	10.5
11	eleven	\N
12	tab\there	-1
\.
COPY psql_copy FROM STDIN WITH (FORMAT csv);
20,"twenty, quoted",20
21,,21.25
\.
SELECT id, label, amount FROM psql_copy ORDER BY id;
COPY psql_copy FROM STDIN WITH (FORMAT csv);
30,not-a-number-below,x
\.
SELECT count(*) FROM psql_copy;

-- LISTEN and NOTIFY in the same session
LISTEN psql_channel;
NOTIFY psql_channel, 'hello from psql';
SELECT pg_notify('psql_channel', 'second');
UNLISTEN psql_channel;

-- a mid-session parameter change, then a timestamptz
SET TimeZone = 'America/New_York';
SHOW TimeZone;
SELECT '2024-03-10 06:30:00+00'::timestamptz AS ts, '2024-07-01 12:00:00+00'::timestamptz AS summer;
SET DateStyle = 'SQL, DMY';
SELECT '2024-03-10 06:30:00+00'::timestamptz AS ts_sql;
RESET DateStyle;
SET TimeZone = 'UTC';

-- a DECLARE cursor and FETCH
BEGIN;
DECLARE psql_cur CURSOR FOR SELECT g AS n, g * g AS sq FROM generate_series(1, 7) AS g ORDER BY g;
FETCH 3 FROM psql_cur;
FETCH 3 FROM psql_cur;
FETCH 3 FROM psql_cur;
FETCH 3 FROM psql_cur;
CLOSE psql_cur;
COMMIT;

-- psql's own features that go through the server
SELECT id, name FROM psql_items WHERE id = 2 \gset item_
\echo item :item_id is :item_name
SELECT name FROM psql_items ORDER BY id \g
\x on
SELECT id, name, price FROM psql_items WHERE id IN (2, 3) ORDER BY id;
\x off
\d psql_copy
DROP TABLE psql_copy;
SELECT 'done' AS status;
