-- A price column, and the first rows.
alter table mig_items add column price int not null default 0;
insert into mig_items (id, name, price) values (1, 'apple', 3), (2, 'pear', 5), (3, 'plum', 2);
