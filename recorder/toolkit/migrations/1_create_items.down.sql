drop table mig_items;
