-- Run by psql through the recording proxy (simple protocol, text results).
select id, name, price, qty, weight, ratio, small, active, added, seen_at, updated from items order by id;
select tag, attrs, doc, blob, code, grade, scores, labels, span from items order by id;
select count(*) from events;
\d items
\dt
\di
\dn
select name from items where id = 99;
begin;
insert into events (item_id, note) values (3, 'psql');
select * from nosuch_table;
select 1;
rollback;
select count(*) from events;
select 1/0;
select 'it''s', E'a\\b', $$dollar 'q'$$ as d;
