"""pgsim driver matrix: asyncpg. Prints every result; tables are prefixed asyncpg_.

Usage: python3 asyncpg_matrix.py DSN
"""

import asyncio
import io
import sys

import asyncpg


def show(label, value):
    if isinstance(value, asyncpg.Record):
        value = tuple(value.items())
    elif isinstance(value, list) and value and isinstance(value[0], asyncpg.Record):
        value = [tuple(r.items()) for r in value]
    print(f"{label}: {value!r}", flush=True)


async def section(state, name, fn):
    """Runs one part of the workload; a failure is printed and the rest go on
    (on a fresh connection if the failure closed this one)."""
    print(f"-- {name}", flush=True)
    try:
        await fn(state["conn"])
    except Exception as e:  # noqa: BLE001 - the transcript says what failed
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"section {name} failed: {type(e).__name__}: {msg}", flush=True)
        if state["conn"].is_closed():
            print("reconnecting", flush=True)
            state["conn"] = await asyncpg.connect(state["dsn"], ssl=False)


async def setup(conn):
    await conn.execute("DROP TABLE IF EXISTS asyncpg_items, asyncpg_copy, asyncpg_records")
    await conn.execute(
        "CREATE TABLE asyncpg_items (id int PRIMARY KEY, name text, price numeric(8,2),"
        " seen date, tags text[], ratio float8)"
    )
    await conn.execute("CREATE TABLE asyncpg_copy (id int, label text, amount numeric)")
    await conn.execute("CREATE TABLE asyncpg_records (id int, name text, score float8)")
    await conn.executemany(
        "INSERT INTO asyncpg_items VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (i, f"item{i}", None if i % 4 == 0 else i * 1.25, None, ["t", str(i)], i / 8)
            for i in range(1, 13)
        ],
    )


async def fetches(conn):
    # fetch, fetchrow, fetchval: fetchrow and fetchval ask for one row (a
    # row-limited Execute, answered with PortalSuspended when more rows match)
    show("fetch", await conn.fetch("SELECT id, name, price FROM asyncpg_items WHERE id <= $1 ORDER BY id", 3))
    show("fetchrow", await conn.fetchrow("SELECT id, name, tags FROM asyncpg_items WHERE id > $1 ORDER BY id", 5))
    show("fetchrow none", await conn.fetchrow("SELECT id FROM asyncpg_items WHERE id < 0"))
    show("fetchval", await conn.fetchval("SELECT count(*) FROM asyncpg_items"))
    show("fetchval column", await conn.fetchval("SELECT id, name FROM asyncpg_items ORDER BY id DESC", column=1))
    show("types", await conn.fetchrow(
        "SELECT 1.5::numeric AS n, '2024-02-29'::date AS d, '{1,NULL,3}'::int[] AS a,"
        " '\\x00ff'::bytea AS b, 'a'::text AS t, NULL::int AS z, true AS bo"))


async def error(conn):
    try:
        await conn.fetch("SELECT no_such_column FROM asyncpg_items")
    except asyncpg.PostgresError as e:
        show("error", (e.sqlstate, e.message))
    show("after error", await conn.fetchval("SELECT 'still here'"))


async def prepared(conn):
    stmt = await conn.prepare("SELECT id, name, ratio FROM asyncpg_items WHERE id = $1")
    show("prepared columns", [(a.name, a.type.name) for a in stmt.get_attributes()])
    for i in (1, 2, 7, 99):
        show(f"prepared fetchrow {i}", await stmt.fetchrow(i))
    show("prepared fetchval", await stmt.fetchval(3, column=1))
    many = await conn.prepare("SELECT id FROM asyncpg_items WHERE id % $1 = 0 ORDER BY id")
    show("prepared fetch", await many.fetch(3))


async def cursors(conn):
    # batch sizes that do and do not divide the row count
    async with conn.transaction():
        cur = await conn.cursor("SELECT id, name FROM asyncpg_items ORDER BY id")
        while True:
            rows = await cur.fetch(4)  # 12 rows: an exact multiple of 4
            show("cursor fetch(4)", rows)
            if not rows:
                break
        cur = await conn.cursor("SELECT id FROM asyncpg_items WHERE id > $1 ORDER BY id", 2)
        show("cursor fetch(3)", await cur.fetch(3))
        show("cursor fetchrow", await cur.fetchrow())
        await cur.forward(2)
        show("cursor after forward", await cur.fetch(100))
        seen = [r["id"] async for r in conn.cursor("SELECT id FROM asyncpg_items ORDER BY id", prefetch=5)]
        show("cursor iteration prefetch=5", seen)


async def transaction(conn):
    try:
        async with conn.transaction():
            await conn.execute("UPDATE asyncpg_items SET name = 'changed' WHERE id = 1")
            await conn.execute("SELECT 1 / 0")
    except asyncpg.PostgresError as e:
        show("transaction error", (e.sqlstate, e.message))
    show("after rollback", await conn.fetchval("SELECT name FROM asyncpg_items WHERE id = 1"))


async def copy(conn):
    # from a text stream, from a query, from records (binary COPY)
    status = await conn.copy_to_table(
        "asyncpg_copy", source=io.BytesIO(b"1\tone\t1.5\n2\t\\N\t-2\n3\tthree\t\\N\n")
    )
    show("copy_to_table", status)
    status = await conn.copy_to_table(
        "asyncpg_copy", source=io.BytesIO(b'4,"four, quoted",4\n'), format="csv"
    )
    show("copy_to_table csv", status)
    out = io.BytesIO()
    status = await conn.copy_from_query("SELECT * FROM asyncpg_copy ORDER BY id", output=out)
    show("copy_from_query", (status, out.getvalue()))
    out = io.BytesIO()
    status = await conn.copy_from_query(
        "SELECT id, label FROM asyncpg_copy WHERE id > $1 ORDER BY id", 1, output=out, format="csv"
    )
    show("copy_from_query csv", (status, out.getvalue()))
    out = io.BytesIO()
    status = await conn.copy_from_table("asyncpg_copy", output=out, columns=["id"])
    show("copy_from_table", (status, sorted(out.getvalue().split())))
    status = await conn.copy_records_to_table(
        "asyncpg_records", records=[(1, "a", 0.5), (2, None, -1.0), (3, "c", None)]
    )
    show("copy_records_to_table", status)
    show("records", await conn.fetch("SELECT * FROM asyncpg_records ORDER BY id"))


async def timeout(conn):
    # asyncpg cancels a query that outlives its timeout (a CancelRequest on
    # a second connection), waits for the cancel, then raises TimeoutError
    try:
        await conn.fetch("SELECT pg_sleep(5)", timeout=0.5)
        show("timeout", "not cancelled?")
    except (asyncio.TimeoutError, asyncpg.PostgresError) as e:
        show("timeout", (type(e).__name__, getattr(e, "sqlstate", None)))
    show("after timeout", await conn.fetchval("SELECT 'still here'"))


async def main(dsn):
    state = {"dsn": dsn, "conn": await asyncpg.connect(dsn, ssl=False)}
    try:
        for name, fn in [
            ("setup", setup),
            ("fetches", fetches),
            ("error", error),
            ("prepared", prepared),
            ("cursors", cursors),
            ("transaction", transaction),
            ("copy", copy),
            ("timeout", timeout),
        ]:
            await section(state, name, fn)
        await state["conn"].execute("DROP TABLE asyncpg_copy, asyncpg_records")
    finally:
        await state["conn"].close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
