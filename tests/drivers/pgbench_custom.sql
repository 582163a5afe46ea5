-- pgsim driver matrix: a custom pgbench script (run with --random-seed=1,
-- so every \set below is the same on every run).
\set aid random(1, 100000 * :scale)
\set bid (:aid - 1) / 100000 + 1
\set delta random(-5000, 5000)
SELECT abalance AS before FROM pgbench_accounts WHERE aid = :aid::int \gset
SELECT :before::int + :delta::int AS after, bid FROM pgbench_accounts WHERE aid = :aid::int AND bid = :bid::int \gset
\if :after > :before
SELECT 'up' AS direction, :after::int - :before::int AS by_how_much;
\else
SELECT 'down or flat' AS direction, :before::int - :after::int AS by_how_much;
\endif
SELECT count(*) FROM pgbench_branches WHERE bid = :bid::int;
