// Agenda 6 side of the benchmark: seed N recurring no-op jobs, or run one Agenda worker process.
//
//   node agenda_bench.mjs seed --uri URI --db DB --jobs jobs.json   (a JSON list of [key, cron])
//   node agenda_bench.mjs work --uri URI --db DB [--process-every ms] [--max-concurrency n]
//        [--concurrency n] [--lock-limit n] [--default-lock-limit n] [--name worker-1]
//
// `work` prints `READY <epoch ms>` once started, then `RUN <job key> <epoch ms>` when each run's
// handler starts (the handler itself does nothing else), and `STOPPED` after SIGTERM/SIGINT.
// Agenda keeps no run history (only lastRunAt/lastFinishedAt per job), so these lines are the
// record the harness computes lag, duplicates and missing runs from.
import { Agenda } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { readFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';

const JOB_NAME = 'noop';

function parseArgs(argv) {
  const [mode, ...rest] = argv;
  const options = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--')) throw new Error(`unexpected argument ${rest[i]}`);
    options[rest[i].slice(2)] = rest[i + 1];
  }
  return { mode, options };
}

function intOption(options, name, fallback) {
  return options[name] === undefined ? fallback : Number.parseInt(options[name], 10);
}

async function connect(options) {
  const client = new MongoClient(options.uri, { appName: options.name || 'agenda-bench' });
  await client.connect();
  return client;
}

async function seed(options) {
  const client = await connect(options);
  const agenda = new Agenda({
    backend: new MongoBackend({ mongo: client.db(options.db) }),
  });
  await agenda.ready;
  const jobs = JSON.parse(readFileSync(options.jobs, 'utf8'));
  const parallel = intOption(options, 'parallel', 16);
  const timezone = options.timezone || 'UTC';
  let next = 0;
  const started = Date.now();
  const unique = options.unique === 'true';
  // Many recurring jobs of one type: create + repeatEvery (+ unique) + save, one job per user.
  // `.unique()` turns each save into an upsert whose filter the stand-in answers by a scan
  // (59 s for 10,000 jobs), so by default each save is a plain insert: same documents.
  async function lane() {
    while (next < jobs.length) {
      const [key, cron] = jobs[next++];
      const job = agenda
        .create(JOB_NAME, { key })
        .repeatEvery(cron, { timezone, skipImmediate: true });
      if (unique) job.unique({ 'data.key': key });
      await job.save();
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane));
  process.stdout.write(`SEEDED ${jobs.length} ${Date.now() - started}\n`);
  await client.close();
}

async function work(options) {
  const client = await connect(options);
  const processEvery = intOption(options, 'process-every', 1000);
  const agenda = new Agenda({
    backend: new MongoBackend({ mongo: client.db(options.db) }),
    name: options.name || 'agenda-bench',
    processEvery,
    maxConcurrency: intOption(options, 'max-concurrency', 32),
    defaultConcurrency: intOption(options, 'concurrency', 32),
    lockLimit: intOption(options, 'lock-limit', 0),
    defaultLockLimit: intOption(options, 'default-lock-limit', 0),
  });
  const lines = [];
  const flush = () => {
    if (lines.length > 0) process.stdout.write(lines.splice(0).join(''));
  };
  const flusher = setInterval(flush, 200);
  agenda.define(
    JOB_NAME,
    async (job) => {
      lines.push(`RUN ${job.attrs.data.key} ${Date.now()}\n`);
    },
    { concurrency: intOption(options, 'concurrency', 32) },
  );
  agenda.on('error', (error) => process.stderr.write(`agenda error: ${error}\n`));
  await agenda.start();
  process.stdout.write(`READY ${Date.now()}\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await agenda.stop();
    clearInterval(flusher);
    flush();
    process.stdout.write('STOPPED\n');
    await client.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const { mode, options } = parseArgs(process.argv.slice(2));
if (mode === 'seed') await seed(options);
else if (mode === 'work') await work(options);
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
