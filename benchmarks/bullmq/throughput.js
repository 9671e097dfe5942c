// BullMQ 5 side of `benchmarks/jobs.py --compare-bullmq`: the same N no-op jobs on the same Redis,
// with the seed's job options (3 attempts, exponential backoff from 5 s, completed jobs kept 1 h /
// at most 200, failed ones 24 h / at most 1000).
//
//   node throughput.js produce REDIS_URL QUEUE N CONCURRENCY           prints {"enqueue": jobs/s}
//   node throughput.js work REDIS_URL QUEUE N CONCURRENCY OUT_FILE     writes {"process": jobs/s}
//
// Enqueue is timed after the connection is up (addBulk, 1000 jobs a call); processing from the
// first job the worker runs to the N-th "completed" event, as BullMQ's own benchmarks measure.
'use strict';

const fs = require('fs');
const { Queue, Worker } = require('bullmq');

const [mode, url, name, nText, concurrencyText, outFile] = process.argv.slice(2);
const n = Number(nText);
const concurrency = Number(concurrencyText);
const u = new URL(url);
const connection = { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
const jobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: 3600, count: 200 },
  removeOnFail: { age: 24 * 3600, count: 1000 },
};

async function produce() {
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) jobs.push({ name: 'noop-job', data: { n: 1 }, opts: jobOptions });
    await queue.addBulk(jobs);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await queue.close();
  process.stdout.write(JSON.stringify({ enqueue: n / seconds }) + '\n');
}

async function work() {
  let first = null;
  let done = 0;
  const worker = new Worker(name, async () => {
    if (first === null) {
      first = process.hrtime.bigint();
      fs.writeFileSync(outFile, 'started'); // the driver starts counting our CPU time here
    }
  }, { connection, concurrency, autorun: false });
  const finished = new Promise((resolve) => {
    worker.on('completed', () => {
      done += 1;
      if (done === n) resolve(process.hrtime.bigint());
    });
  });
  worker.run();
  const last = await finished;
  const seconds = Number(last - first) / 1e9;
  fs.writeFileSync(outFile, JSON.stringify({ process: n / seconds }));
  await new Promise(() => {}); // stay up until stopped, so the driver can read our memory
}

(mode === 'produce' ? produce() : work()).catch((err) => {
  console.error(err);
  process.exit(1);
});
