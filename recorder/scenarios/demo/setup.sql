-- Builds the world the demo scenario records. Run against database pgsim_demo
-- (created fresh by the recorder) over a direct connection: not recorded.
CREATE TABLE items (
    id       int PRIMARY KEY,
    name     text NOT NULL UNIQUE,
    price    numeric(10,2),
    qty      int8,
    weight   float8,
    ratio    float4,
    small    int2,
    active   bool,
    added    date,
    seen_at  timestamp,
    updated  timestamptz,
    tag      uuid,
    attrs    jsonb,
    doc      json,
    blob     bytea,
    code     varchar(8),
    grade    char(2),
    scores   int4[],
    labels   text[],
    span     interval
);
INSERT INTO items VALUES
 (1, 'apple', 1.50, 100, 0.2, 0.5, 7, true, '2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05.123456+00',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"color": "red", "n": [1, 2]}', '{"k": 1}', '\xdeadbeef', 'AP-1', 'A',
  '{1,2,3}', '{"a","b c",NULL}', '1 day 02:03:04'),
 (2, 'pear', 12345678.99, -9223372036854775808, -1.5e-10, -3.25, -32768, false, '0044-03-15 BC', '1999-12-31 23:59:59.999999',
  '1970-01-01 00:00:00+00', '00000000-0000-0000-0000-000000000000', '[]', '[1, "two"]', '\x', 'PR', 'B',
  '{}', '{}', '-1 mons'),
 (3, 'quince "q"', NULL, NULL, 'NaN', 'Infinity', NULL, NULL, 'infinity', NULL, '-infinity', NULL, 'null', NULL, NULL, NULL, NULL,
  '{NULL,-1}', '{"", "NULL", "x,y", "q\"t"}', NULL);
CREATE TABLE events (
    id      serial PRIMARY KEY,
    item_id int NOT NULL REFERENCES items(id),
    note    text
);
CREATE INDEX events_item ON events (item_id);
INSERT INTO events (item_id, note) VALUES (1, 'created'), (2, 'created'), (1, 'restocked');
ANALYZE;
