/**
 * How the CSV connector reads what real files contain: broken lines go to the
 * reject sink with file and line, and reading continues.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import csv from '../../../connectors/csv/index.js';
import { DativoError } from '../../../lib/errors.js';
import { locationOf } from '../../../lib/records/location.js';
import type { AssetField } from '../../../lib/types.js';
import { collect, makeCsvCtx, makeCsvPlan, withLines } from './helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-csv-format-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function read(name: string, content: string | Buffer, options?: Record<string, unknown>) {
  await writeFile(join(dir, name), content);
  const plan = makeCsvPlan({ dir, files: [{ path: name }], ...(options ? { options } : {}) });
  const ctx = makeCsvCtx(plan);
  const rows = await collect(csv.read(ctx));
  return { rows, rejects: ctx.rejects.items, file: join(dir, name) };
}

describe('csv: values', () => {
  it('keys records by header names, all values strings', async () => {
    const { rows, rejects } = await read('basic.csv', 'id,name,amount\n1,Ann,12.50\n2,Bob,-0.01\n');
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { id: '1', name: 'Ann', amount: '12.50' },
      { id: '2', name: 'Bob', amount: '-0.01' },
    ]);
    assert.equal(rejects.length, 0);
  });

  it('an unquoted empty field is NULL, a quoted empty field is the empty string', async () => {
    const { rows } = await read('nulls.csv', 'a,b,c\n,"",x\n"",,""\n"say ""hi""",,\n"",",",\n');
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { a: null, b: '', c: 'x' },
      { a: '', b: null, c: '' },
      { a: 'say "hi"', b: null, c: null },
      { a: '', b: ',', c: null },
    ]);
  });

  it('strips a UTF-8 BOM from the first column name', async () => {
    const { rows } = await read('bom.csv', '\uFEFFid,name\n1,zoë\n');
    assert.deepEqual(Object.keys(rows[0]!), ['id', 'name']);
    assert.equal(rows[0]!.name, 'zoë');
  });

  it('keeps line breaks inside quoted fields and reports the starting line', async () => {
    const { rows, rejects } = await read('multi.csv', 'id,text\n1,"line one\nline two"\n2,"a\r\nb"\n3,plain\n');
    assert.deepEqual(withLines(rows), [
      { id: '1', text: 'line one\nline two', _line: 2 },
      { id: '2', text: 'a\r\nb', _line: 4 },
      { id: '3', text: 'plain', _line: 6 },
    ]);
    assert.equal(rejects.length, 0);
  });

  it('reads CRLF files, skips blank lines and counts them in line numbers', async () => {
    const { rows } = await read('crlf.csv', 'id,v\r\n1,a\r\n\r\n2,b\r\n');
    assert.deepEqual(withLines(rows), [
      { id: '1', v: 'a', _line: 2 },
      { id: '2', v: 'b', _line: 4 },
    ]);
  });

  it('keeps unicode (multi-byte, emoji, CJK) intact across read chunks', async () => {
    const line = (i: number) => `${i},张伟-${i}@例子.cn 🎉 zoë\n`;
    let text = 'id,email\n';
    for (let i = 0; i < 20_000; i++) text += line(i);
    const { rows, rejects } = await read('unicode.csv', text);
    assert.equal(rejects.length, 0);
    assert.equal(rows.length, 20_000);
    assert.equal(rows[12_345]!.email, '张伟-12345@例子.cn 🎉 zoë');
  });

  it('reads latin1 when asked, and options like delimiter and quote_char', async () => {
    const bytes = Buffer.from("id;name\n1;'Jos\xe9; Jr'\n", 'latin1');
    const { rows } = await read('latin1.csv', bytes, { encoding: 'latin1', delimiter: ';', quote_char: "'" });
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ id: '1', name: 'José; Jr' }]);
  });

  it('attaches {file, line} as a non-enumerable location', async () => {
    const { rows, file } = await read('loc.csv', 'a\nx\ny\n');
    assert.deepEqual(locationOf(rows[1]), { file, line: 3 });
    assert.deepEqual(Object.keys(rows[1]!), ['a']);
    assert.equal(JSON.stringify(rows[1]), '{"a":"y"}');
  });

  it('an empty file yields no records', async () => {
    const { rows, rejects } = await read('empty.csv', '');
    assert.deepEqual(rows, []);
    assert.equal(rejects.length, 0);
  });
});

describe('csv: broken lines are rejected and reading continues', () => {
  it('wrong number of fields → column_count with file and line', async () => {
    const { rows, rejects, file } = await read('count.csv', 'a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n');
    assert.deepEqual(rows.map((r) => r.a), ['1', '10']);
    assert.deepEqual(
      rejects.map((r) => ({ code: r.code, line: r.location?.line, file: r.location?.file, record: r.record })),
      [
        { code: 'column_count', line: 3, file, record: '4,5' },
        { code: 'column_count', line: 4, file, record: '6,7,8,9' },
      ],
    );
    assert.match(rejects[0]!.reason, /expected 3 fields.*got 2/);
  });

  it('a quote inside an unquoted field → csv_quote for that line only', async () => {
    const { rows, rejects } = await read('q1.csv', 'a,b\n1,ab"c\n2,x\n');
    assert.deepEqual(withLines(rows), [{ a: '2', b: 'x', _line: 3 }]);
    assert.deepEqual(rejects.map((r) => [r.code, r.location?.line, r.record]), [['csv_quote', 2, '1,ab"c']]);
  });

  it('a bad closing quote swallows lines up to the next closing quote; the rest is read', async () => {
    // csv-parse stays inside the quoted field after `"ab"c` until a quote is
    // followed by a delimiter or line break (end of line 3): lines 2-3 are one
    // rejected record, line 4 on is read again.
    const { rows, rejects } = await read('q2.csv', 'a,b\n1,"ab"c\n2,x\n3,"y"\n4,z\n5,w\n');
    assert.deepEqual(withLines(rows), [
      { a: '4', b: 'z', _line: 5 },
      { a: '5', b: 'w', _line: 6 },
    ]);
    assert.equal(rejects.length, 1);
    assert.deepEqual([rejects[0]!.code, rejects[0]!.location?.line, rejects[0]!.record], ['csv_quote', 2, '1,"ab"c\n2,x\n3,"y"']);
  });

  it('an unclosed quote mid-file: what follows up to a closing quote is lost, later lines are read', async () => {
    const { rows, rejects } = await read('q3.csv', 'a,b\n1,"never closed\n2,x\n3,"q",\n4,z\n');
    // The quote opened on line 2 closes at `"q` on line 4 (a quote followed by
    // a delimiter is a closing quote): lines 2-4 are one rejected record.
    assert.deepEqual(withLines(rows), [{ a: '4', b: 'z', _line: 5 }]);
    assert.deepEqual(rejects.map((r) => [r.code, r.location?.line]), [['csv_quote', 2]]);
  });

  it('an unclosed quote with no quote after it: the rest of the file is one reject', async () => {
    const { rows, rejects } = await read('q4.csv', 'a,b\n0,ok\n1,"never closed\n2,x\n3,y\n');
    assert.deepEqual(withLines(rows), [{ a: '0', b: 'ok', _line: 2 }]);
    assert.equal(rejects.length, 1);
    assert.deepEqual([rejects[0]!.code, rejects[0]!.location?.line, rejects[0]!.record], ['csv_quote', 3, '1,"never closed\n2,x\n3,y']);
  });

  it('invalid UTF-8 → utf8 reject for that line only; a genuine U+FFFD is kept', async () => {
    const content = Buffer.concat([
      Buffer.from('id,name\n1,good\n2,'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('bad\n3,\uFFFD is a real character here\n4,zoë\n'),
    ]);
    const { rows, rejects, file } = await read('utf8.csv', content);
    assert.deepEqual(withLines(rows), [
      { id: '1', name: 'good', _line: 2 },
      { id: '3', name: '\uFFFD is a real character here', _line: 4 },
      { id: '4', name: 'zoë', _line: 5 },
    ]);
    assert.deepEqual(rejects.map((r) => [r.code, r.location?.line, r.location?.file]), [['utf8', 3, file]]);
  });

  it('invalid UTF-8 in the last line without a line break is found too', async () => {
    const { rows, rejects } = await read('utf8-last.csv', Buffer.concat([Buffer.from('id\n1\n'), Buffer.from([0x80])]));
    assert.deepEqual(rows.map((r) => r.id), ['1']);
    assert.deepEqual(rejects.map((r) => [r.code, r.location?.line]), [['utf8', 3]]);
  });

  it('a header that cannot be parsed fails the read with SOURCE_FORMAT', async () => {
    await writeFile(join(dir, 'badhead.csv'), 'a,"b\n');
    const plan = makeCsvPlan({ dir, files: [{ path: 'badhead.csv' }] });
    await assert.rejects(collect(csv.read(makeCsvCtx(plan))), (err: unknown) => {
      assert.ok(err instanceof DativoError);
      assert.equal(err.code, 'SOURCE_FORMAT');
      return true;
    });
  });

  it('a record longer than max_record_size fails the read: csv-parse cannot resynchronise after it', async () => {
    await writeFile(join(dir, 'long.csv'), `a,b\n1,x\n2,"${'y'.repeat(300)}"\n3,z\n`);
    const plan = makeCsvPlan({ dir, files: [{ path: 'long.csv' }], options: { max_record_size: 100 } });
    const rows: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of csv.read(makeCsvCtx(plan))) rows.push(r);
      })(),
      (err: unknown) => {
        assert.ok(err instanceof DativoError);
        assert.equal(err.code, 'SOURCE_FORMAT');
        assert.equal(err.context.line, 3);
        assert.match(err.message, /max_record_size \(100 characters\)/);
        return true;
      },
    );
    assert.ok(rows.length <= 1);
  });

  it('a header naming a column twice fails the read with SOURCE_FORMAT', async () => {
    await writeFile(join(dir, 'duphead.csv'), 'id,name,id\n1,a,2\n');
    const plan = makeCsvPlan({ dir, files: [{ path: 'duphead.csv' }] });
    await assert.rejects(collect(csv.read(makeCsvCtx(plan))), (err: unknown) => {
      assert.ok(err instanceof DativoError);
      assert.equal(err.code, 'SOURCE_FORMAT');
      assert.match(err.message, /"id" twice/);
      return true;
    });
  });

  describe('a header without some of the asset\'s columns', () => {
    const field = (name: string, required: boolean): AssetField => ({ name, type: { kind: 'string' }, typeName: 'string', required, fieldId: 0 });
    const planOf = (name: string) => {
      const plan = makeCsvPlan({ dir, files: [{ path: name }] });
      plan.asset = { ...plan.asset, name: 'orders', fields: [field('id', true), field('note', false), field('amount', true), field('day', false)] };
      return plan;
    };

    for (const columnar of [false, true]) {
      it(`${columnar ? 'columnar' : 'record'} path: a required column missing fails the file with SOURCE_FORMAT naming it, before any row`, async () => {
        await writeFile(join(dir, 'noreq.csv'), '\uFEFFnote,day,extra\nx,2024-01-01,1\ny,,2\n');
        const ctx = { ...makeCsvCtx(planOf('noreq.csv')), ...(columnar ? { columnarText: true } : {}) };
        const out: unknown[] = [];
        await assert.rejects(
          (async () => {
            for await (const r of csv.read(ctx)) out.push(r);
          })(),
          (err: unknown) => {
            assert.ok(err instanceof DativoError, String(err));
            assert.equal(err.code, 'SOURCE_FORMAT');
            assert.equal(err.exitCode, 3);
            assert.equal(err.message, `csv: the header of ${join(dir, 'noreq.csv')} lacks the required columns "id", "amount" of asset orders: the file fails before any row`);
            assert.deepEqual(err.context.columns, ['id', 'amount']);
            assert.equal(err.context.file, join(dir, 'noreq.csv'));
            assert.equal(err.context.line, 1);
            return true;
          },
        );
        assert.deepEqual(out, []);
        assert.equal(ctx.rejects.count, 0);
      });
    }

    it('one required column missing: named alone', async () => {
      await writeFile(join(dir, 'noamount.csv'), 'id,note\n1,a\n');
      await assert.rejects(collect(csv.read(makeCsvCtx(planOf('noamount.csv')))), /lacks the required column "amount" of asset orders/);
    });

    it('only optional columns missing: rows as before (absent, so NULL after validation); an empty required value is still the record\'s business', async () => {
      const { rows, rejects } = await (async () => {
        await writeFile(join(dir, 'noopt.csv'), 'amount,id\n1.00,1\n2.00,\n');
        const ctx = makeCsvCtx(planOf('noopt.csv'));
        return { rows: await collect(csv.read(ctx)), rejects: ctx.rejects.items };
      })();
      assert.deepEqual(rows.map((r) => ({ ...r })), [
        { amount: '1.00', id: '1' },
        { amount: '2.00', id: null },
      ]);
      assert.equal(rejects.length, 0);
    });
  });

  it('invalid options are CONFIG_INVALID listing each one', async () => {
    const plan = makeCsvPlan({ dir, files: [{ path: 'basic.csv' }], options: { encoding: 'ebcdic', delimiter: '' } });
    assert.throws(
      () => csv.read(makeCsvCtx(plan)),
      (err: unknown) => err instanceof DativoError && err.code === 'CONFIG_INVALID' && err.problems.length === 2,
    );
  });
});
