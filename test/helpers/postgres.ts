/** Postgres administration for tests that create and drop their own databases. */
import pg from 'pg';

/** The server every test talks to (trust auth on 127.0.0.1). */
export const PG_ADMIN_URI = 'postgres://postgres@127.0.0.1:5432/test';

/** Run one statement (CREATE/DROP DATABASE …) on a fresh admin connection. */
export async function pgAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URI });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
