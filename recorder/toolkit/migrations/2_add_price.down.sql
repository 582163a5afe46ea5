delete from mig_items where id in (1, 2, 3);
alter table mig_items drop column price;
