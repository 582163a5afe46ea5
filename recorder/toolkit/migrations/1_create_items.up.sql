-- The items table.
create table mig_items (id int primary key, name text not null);
