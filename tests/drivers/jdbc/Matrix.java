// pgsim driver matrix: pgjdbc. Prints every result; tables are prefixed jdbc_.
//
// Usage: java -cp /usr/share/java/postgresql.jar Matrix.java JDBC_URL
// The URL sets prepareThreshold, so after that many executions pgjdbc switches
// a PreparedStatement to a named server-side statement with binary transfer.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public class Matrix {
    static void show(String label, Object value) {
        System.out.println(label + ": " + value);
    }

    static String rows(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> cells = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                Object v = rs.getObject(i);
                String s = v instanceof byte[] ? Arrays.toString((byte[]) v) : String.valueOf(v);
                cells.add(md.getColumnLabel(i) + "=" + s);
            }
            out.add("(" + String.join(", ", cells) + ")");
        }
        return out.toString();
    }

    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0])) {
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE IF EXISTS jdbc_items");
                st.execute("CREATE TABLE jdbc_items (id int PRIMARY KEY, name text NOT NULL,"
                        + " price numeric(8,2), seen date, raw bytea, ratio float8)");
                try (ResultSet rs = st.executeQuery("SELECT 1 AS one, 'two' AS two, NULL::int AS three")) {
                    show("plain statement", rows(rs));
                }
            }

            // a batch insert
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO jdbc_items (id, name, price, seen, raw, ratio) VALUES (?, ?, ?, ?::date, ?, ?)")) {
                for (int i = 1; i <= 10; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "item" + i);
                    if (i % 4 == 0) {
                        ps.setNull(3, java.sql.Types.NUMERIC);
                    } else {
                        ps.setBigDecimal(3, new BigDecimal(i).multiply(new BigDecimal("1.25")));
                    }
                    ps.setString(4, "2024-02-" + (10 + i));
                    ps.setBytes(5, new byte[] {(byte) i, (byte) 0xff});
                    ps.setDouble(6, i / 8.0);
                    ps.addBatch();
                }
                show("batch", Arrays.toString(ps.executeBatch()));
            }

            // one PreparedStatement executed repeatedly: past prepareThreshold it
            // becomes a named server-side statement and results come back binary
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT id, name, price, seen, raw, ratio FROM jdbc_items WHERE id = ?")) {
                for (int id : new int[] {1, 2, 3, 4, 5, 99}) {
                    ps.setInt(1, id);
                    try (ResultSet rs = ps.executeQuery()) {
                        show("prepared " + id, rows(rs));
                    }
                }
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "UPDATE jdbc_items SET ratio = ratio * ? WHERE id = ?")) {
                for (int id = 1; id <= 5; id++) {
                    ps.setDouble(1, 2.0);
                    ps.setInt(2, id);
                    show("update " + id, ps.executeUpdate());
                }
            }

            // an error, then the connection goes on
            try (Statement st = conn.createStatement()) {
                st.executeQuery("SELECT 1 / (id - id) FROM jdbc_items");
            } catch (SQLException e) {
                show("error", e.getSQLState() + " " + e.getMessage().lines().findFirst().orElse(""));
            }

            // a query timeout: pgjdbc sends a CancelRequest after a second
            try (Statement st = conn.createStatement()) {
                st.setQueryTimeout(1);
                st.executeQuery("SELECT pg_sleep(5)");
                show("timeout", "not cancelled?");
            } catch (SQLException e) {
                show("timeout", e.getSQLState() + " " + e.getMessage().lines().findFirst().orElse(""));
            }

            // a fetch size inside a transaction: row-limited Execute, PortalSuspended
            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT id, name FROM jdbc_items WHERE id > ? ORDER BY id")) {
                ps.setFetchSize(3);
                ps.setInt(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    show("fetch size 3 (9 rows)", rows(rs));
                }
                ps.setInt(1, 4);
                try (ResultSet rs = ps.executeQuery()) {
                    show("fetch size 3 (6 rows)", rows(rs));
                }
            }
            try (Statement st = conn.createStatement()) {
                st.setFetchSize(4);
                try (ResultSet rs = st.executeQuery("SELECT g FROM generate_series(1, 10) AS g ORDER BY g")) {
                    show("statement fetch size 4", rows(rs));
                }
            }
            try (Statement st = conn.createStatement()) {
                st.executeUpdate("DELETE FROM jdbc_items WHERE id > 8");
            }
            conn.rollback();
            conn.setAutoCommit(true);
            try (Statement st = conn.createStatement();
                    ResultSet rs = st.executeQuery("SELECT count(*) AS n, sum(ratio) AS r FROM jdbc_items")) {
                show("after rollback", rows(rs));
            }
        }
        System.out.println("done");
    }
}
