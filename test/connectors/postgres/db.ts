/**
 * A throwaway Postgres database per test file on the local server
 * (127.0.0.1:5432, user postgres, trust auth).
 */
import pg from 'pg';
import { randomName } from './helpers.js';

export const PG_HOST = process.env['TEST_PGHOST'] ?? '127.0.0.1';
export const PG_PORT = Number(process.env['TEST_PGPORT'] ?? 5432);
export const PG_USER = process.env['TEST_PGUSER'] ?? 'postgres';

export interface TestPg {
  database: string;
  /** A client connected to the test database (UTC session). */
  client: pg.Client;
  /** Connection block for a job's `source.connection`. */
  connection: Record<string, unknown>;
  drop(): Promise<void>;
}

/** Create a database with a random name and connect to it. */
export async function createTestPg(prefix = 'dativo_pg'): Promise<TestPg> {
  const database = randomName(prefix);
  const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const client = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  return {
    database,
    client,
    connection: { host: PG_HOST, port: PG_PORT, user: PG_USER, database },
    async drop() {
      await client.end().catch(() => undefined);
      const a = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: 'postgres' });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await a.end();
    },
  };
}
