#!/usr/bin/env python3
"""An ORM-style test suite through psycopg 3, for benches/compare.sh.

Each "test" does what an application test with an ORM sends: a
transaction that inserts a user and three posts, reads them back by key
and through a join, updates one, counts, and commits; every tenth test also
runs the introspection queries an ORM sends at start (information_schema,
pg_catalog). Run live, recorded through `pgsim record`, then replayed by
`pgsim serve`: the script prints how many statements it sent and a SHA-256
of everything it read, which must be the same live and in replay.

    orm_suite.py CONNINFO TESTS [setup]

`setup` (re)creates the schema first; the replayed run sends it too, so
the recorded set holds it.
"""
import hashlib
import sys

import psycopg

INTROSPECTION = [
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
    "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
    "SELECT c.conname, c.contype FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
    "WHERE t.relname = %s ORDER BY 1",
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1",
]


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    conninfo, tests = sys.argv[1], int(sys.argv[2])
    digest = hashlib.sha256()
    sent = 0

    def run(cur, sql, params=None):
        nonlocal sent
        cur.execute(sql, params)
        sent += 1
        if cur.description is not None:
            for row in cur.fetchall():
                digest.update(repr(row).encode())
        digest.update(str(cur.rowcount).encode())

    with psycopg.connect(conninfo, autocommit=True) as conn:
        cur = conn.cursor()
        if "setup" in sys.argv[3:]:
            run(cur, "DROP TABLE IF EXISTS posts, users")
            run(cur, "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL, active boolean NOT NULL DEFAULT true)")
            run(cur, "CREATE TABLE posts (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users(id), title text NOT NULL, body text, score int NOT NULL DEFAULT 0)")
            run(cur, "CREATE INDEX posts_user ON posts (user_id)")
        for t in range(tests):
            if t % 10 == 0:
                run(cur, INTROSPECTION[0])
                for table in ("users", "posts"):
                    for sql in INTROSPECTION[1:]:
                        run(cur, sql, (table,))
            with conn.transaction():
                run(cur, "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id",
                    (f"user{t}@example.com", f"User {t}"))
                for p in range(3):
                    run(cur, "INSERT INTO posts (user_id, title, body, score) "
                        "SELECT id, %s, %s, %s FROM users WHERE email = %s",
                        (f"post {t}.{p}", "lorem ipsum " * (p + 1), p * t % 17, f"user{t}@example.com"))
                run(cur, "SELECT id, email, name, active FROM users WHERE email = %s", (f"user{t}@example.com",))
                run(cur, "SELECT u.name, p.title, p.score FROM posts p JOIN users u ON u.id = p.user_id "
                    "WHERE u.email = %s ORDER BY p.id", (f"user{t}@example.com",))
                run(cur, "UPDATE posts SET score = score + 1 WHERE title = %s", (f"post {t}.0",))
                run(cur, "SELECT count(*), coalesce(sum(score), 0) FROM posts")
            if t % 5 == 4:
                run(cur, "DELETE FROM posts WHERE title = %s", (f"post {t}.2",))
    print(f"statements={sent} digest={digest.hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
