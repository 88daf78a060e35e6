/**
 * Data analysis in the code interpreter: upload a CSV, load it with pandas in one cell, plot it
 * with matplotlib in the next (the DataFrame is still there), and save the PNG that comes back.
 * Needs a worker serving the code-interpreter template, then:
 *
 *   node --import tsx examples/data-analysis.ts
 *
 * SANDPOOL_URL (default http://127.0.0.1:5000) and SANDPOOL_API_KEY say where and how to connect.
 */
import { writeFile } from 'node:fs/promises';
import { Sandbox } from '@sandpool/client';

const CSV = [
  'month,visitors,signups',
  '2026-01,1200,48',
  '2026-02,1350,61',
  '2026-03,1610,70',
  '2026-04,1580,66',
  '2026-05,1900,95',
  '2026-06,2240,118',
].join('\n');

async function main(): Promise<void> {
  await using sandbox = await Sandbox.create({ ttlSeconds: 300 });
  await sandbox.writeFile('traffic.csv', CSV);

  // Cell 1: load. The last expression comes back as text and as an HTML table.
  const loaded = await sandbox.runCode(
    'import pandas as pd\n' +
      'df = pd.read_csv("traffic.csv", parse_dates=["month"])\n' +
      'df["rate"] = df.signups / df.visitors\n' +
      'df.describe().round(3)',
  );
  console.log(loaded.text);

  // Cell 2: plot; the figure left open at the end of the cell comes back as a PNG.
  const plotted = await sandbox.runCode(
    'import matplotlib.pyplot as plt\n' +
      'fig, ax = plt.subplots(figsize=(6, 3))\n' +
      'ax.plot(df.month, df.rate * 100, marker="o")\n' +
      'ax.set_ylabel("signup rate (%)")\n' +
      'print(f"best month: {df.loc[df.rate.idxmax(), \'month\']:%B}")',
    { onStdout: (data) => process.stdout.write(data) },
  );
  if (plotted.error !== undefined) throw new Error(`${plotted.error.name}: ${plotted.error.value}`);
  const png = plotted.results.find((result) => result.png !== undefined)?.png;
  if (png === undefined) throw new Error('the cell returned no figure');
  await writeFile('signup-rate.png', Buffer.from(png, 'base64'));
  console.log('saved signup-rate.png');
}

await main();
