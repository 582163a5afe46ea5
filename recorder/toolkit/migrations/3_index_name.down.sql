drop index mig_items_name;
