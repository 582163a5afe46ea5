create index mig_items_name on mig_items (name);
