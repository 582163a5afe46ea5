"""pgsim driver matrix: psycopg 3. Prints every result; tables are prefixed psycopg_.

Usage: python3 psycopg_matrix.py CONNINFO
"""

import sys
import threading

import psycopg
from psycopg import sql


def show(label, value):
    print(f"{label}: {value!r}", flush=True)


def section(conn, name, fn):
    """Runs one part of the workload; a failure is printed and the rest go on."""
    print(f"-- {name}", flush=True)
    try:
        fn(conn)
    except Exception as e:  # noqa: BLE001 - the transcript says what failed
        print(f"section {name} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()


def setup(conn):
    show("server_version", conn.info.parameter_status("server_version"))
    conn.execute("DROP TABLE IF EXISTS psycopg_items, psycopg_copy")
    conn.execute(
        "CREATE TABLE psycopg_items (id int PRIMARY KEY, name text, price numeric(8,2),"
        " seen date, data jsonb, raw bytea, ratio float8)"
    )
    conn.execute("CREATE TABLE psycopg_copy (id int, label text, amount numeric)")


def executemany(conn):
    # psycopg 3 sends executemany as one pipeline when libpq allows
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO psycopg_items VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (1, "apple", "0.50", "2024-01-02", '{"k": [1, 2]}', b"\x00\x01", 0.25),
                (2, "bread", "2.25", "2024-02-29", '{"k": null}', b"", -1.5),
                (3, "cheese", None, None, None, None, None),
                (4, "dates", "10.00", "1999-12-31", '"s"', b"\xff", 1e100),
            ],
        )
        show("executemany rowcount", cur.rowcount)


def text_results(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM psycopg_items WHERE id >= %s ORDER BY id", (2,))
        show("text columns", [(d.name, d.type_code) for d in cur.description])
        for row in cur:
            show("text row", row)
        cur.execute("SELECT %s::int + %s::int AS s, %s::text AS t, %s AS n", (40, 2, "x", None))
        show("params", cur.fetchone())
        cur.execute(
            sql.SQL("SELECT {} FROM psycopg_items WHERE name = ANY(%s) ORDER BY id").format(
                sql.Identifier("name")
            ),
            (["apple", "dates", "nope"],),
        )
        show("any(array)", cur.fetchall())


def binary_results(conn):
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT id, name, price, seen, data, raw, ratio FROM psycopg_items ORDER BY id")
        for row in cur:
            show("binary row", row)
        cur.execute("SELECT %s::int4[] AS a, %b::bytea AS b", ([1, 2, None], b"\x00bin"))
        show("binary params", cur.fetchone())


def error(conn):
    try:
        conn.execute("SELECT 1 / (id - id) FROM psycopg_items")
    except psycopg.Error as e:
        show("error", (e.sqlstate, str(e).splitlines()[0]))
    show("after error", conn.execute("SELECT 'still here'").fetchone())


def pipeline(conn):
    with conn.pipeline():
        c1 = conn.execute("SELECT count(*) FROM psycopg_items")
        c2 = conn.execute("UPDATE psycopg_items SET price = price * 2 WHERE id = %s", (1,))
        c3 = conn.execute("SELECT id, price FROM psycopg_items WHERE id = %s", (1,))
        conn.execute("INSERT INTO psycopg_items (id, name) VALUES (%s, %s)", (5, "eggs"))
    show("pipeline count", c1.fetchone())
    show("pipeline update", c2.rowcount)
    show("pipeline select", c3.fetchone())


def transaction(conn):
    with conn.transaction() as tx:
        conn.execute("DELETE FROM psycopg_items WHERE id = 5")
        show("in transaction", conn.execute("SELECT count(*) FROM psycopg_items").fetchone())
        raise psycopg.Rollback(tx)
    show("after rollback", conn.execute("SELECT count(*) FROM psycopg_items").fetchone())


def named_cursor(conn):
    with conn.transaction():
        with conn.cursor(name="psycopg_named") as cur:
            cur.itersize = 2
            cur.execute("SELECT g, g * 10 FROM generate_series(1, 7) AS g ORDER BY g")
            while True:
                rows = cur.fetchmany(3)
                show("fetchmany", rows)
                if not rows:
                    break
        with conn.cursor(name="psycopg_named_iter", binary=True) as cur:
            cur.itersize = 2
            cur.execute("SELECT id, name FROM psycopg_items WHERE id <= %s ORDER BY id", (4,))
            show("named iter", list(cur))


def copy(conn):
    with conn.cursor() as cur:
        with cur.copy("COPY psycopg_copy (id, label, amount) FROM STDIN") as copy:
            copy.write_row((1, "one", "1.5"))
            copy.write_row((2, "tab\there", None))
        show("copy in text rowcount", cur.rowcount)
        with cur.copy("COPY psycopg_copy FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write('3,"three, quoted",3\n4,,-4\n')
        show("copy in csv rowcount", cur.rowcount)
        with cur.copy("COPY psycopg_copy (id, label) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.set_types(["int4", "text"])
            copy.write_row((5, "binary"))
        show("copy in binary rowcount", cur.rowcount)
        with cur.copy("COPY (SELECT * FROM psycopg_copy ORDER BY id) TO STDOUT") as copy:
            for row in copy.rows():
                show("copy out row", row)
        with cur.copy(
            "COPY (SELECT id, label FROM psycopg_copy ORDER BY id) TO STDOUT WITH (FORMAT csv)"
        ) as copy:
            show("copy out csv", b"".join(bytes(b) for b in copy).decode())
        with cur.copy(
            "COPY (SELECT id, amount FROM psycopg_copy ORDER BY id) TO STDOUT WITH (FORMAT binary)"
        ) as copy:
            copy.set_types(["int4", "numeric"])
            show("copy out binary", list(copy.rows()))
        cur.execute("SELECT * FROM psycopg_copy ORDER BY id")
        show("after copy", cur.fetchall())


def prepared(conn):
    # prepared on the server from the first execution on (prepare_threshold)
    conn.prepare_threshold = 1
    for i in range(4):
        row = conn.execute("SELECT name FROM psycopg_items WHERE id = %s", (i + 1,)).fetchone()
        show(f"prepared {i}", row)
    conn.prepare_threshold = 5


def cancel(conn):
    # A cancel from another thread while the query runs; the thread is
    # joined before going on so it can never hit a later query.
    canceller = threading.Timer(0.3, conn.cancel_safe)
    canceller.start()
    try:
        conn.execute("SELECT pg_sleep(5)")
        show("cancel", "not cancelled?")
    except psycopg.Error as e:
        show("cancel", (e.sqlstate, str(e).splitlines()[0]))
    finally:
        canceller.join()
    show("after cancel", conn.execute("SELECT 'still here'").fetchone())


def main(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name, fn in [
            ("setup", setup),
            ("executemany", executemany),
            ("text results", text_results),
            ("binary results", binary_results),
            ("error", error),
            ("pipeline", pipeline),
            ("transaction", transaction),
            ("named cursor", named_cursor),
            ("copy", copy),
            ("prepared", prepared),
            ("cancel", cancel),
        ]:
            section(conn, name, fn)
        conn.execute("DROP TABLE psycopg_copy")
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
