/**
 * A throwaway MariaDB/MySQL database per test file on the local server
 * (127.0.0.1:3306, root, empty password).
 */
import mysql from 'mysql2/promise';
import { randomName } from '../postgres/helpers.js';

export const MY_HOST = process.env['TEST_MYSQL_HOST'] ?? '127.0.0.1';
export const MY_PORT = Number(process.env['TEST_MYSQL_PORT'] ?? 3306);
export const MY_USER = process.env['TEST_MYSQL_USER'] ?? 'root';

export interface TestMysql {
  database: string;
  /** A connection to the test database (UTC session, multiple statements allowed). */
  conn: mysql.Connection;
  /** Connection block for a job's `source.connection`. */
  connection: Record<string, unknown>;
  drop(): Promise<void>;
}

/** Create a database with a random name and connect to it. */
export async function createTestMysql(prefix = 'dativo_my'): Promise<TestMysql> {
  const database = randomName(prefix);
  const admin = await mysql.createConnection({ host: MY_HOST, port: MY_PORT, user: MY_USER });
  await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  await admin.end();
  const conn = await mysql.createConnection({
    host: MY_HOST,
    port: MY_PORT,
    user: MY_USER,
    database,
    multipleStatements: true,
    charset: 'UTF8MB4_GENERAL_CI',
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
  await conn.query("SET time_zone = '+00:00'");
  return {
    database,
    conn,
    connection: { host: MY_HOST, port: MY_PORT, user: MY_USER, database },
    async drop() {
      await conn.end().catch(() => undefined);
      const a = await mysql.createConnection({ host: MY_HOST, port: MY_PORT, user: MY_USER });
      await a.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await a.end();
    },
  };
}
