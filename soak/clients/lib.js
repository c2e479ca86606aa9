// Shared by the soak clients (soak/clients/*.js), all built on the official
// socket.io-client (resolved through NODE_PATH: bench/node_modules for `make soak`, the
// project's node_modules for tests/test_soak_short.py).
//
// Protocol with soak/run.py:
//   argv[2]              the scenario's config as JSON
//   stdout "@hold X"     run.py samples the server's /proc, then writes "go" to our stdin
//   stdout "@mark X"     run.py samples the server's /proc and goes on
//   stdout "RESULT {}"   this run's measurements, one JSON object (the last line)
//   stdin                commands, one per line (each script says which)
//   stderr               diagnostics, kept in run.py's log
// Every wait is bounded; every client exits by itself (cfg.limit seconds at most).

const { io } = require("socket.io-client");
const readline = require("readline");

const cfg = JSON.parse(process.argv[2] || "{}");
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function log(...args) {
  process.stderr.write(`[${process.argv[1].split("/").pop()}] ${args.join(" ")}\n`);
}

// -- stdin commands -----------------------------------------------------------------------

const lines = { queue: [], waiters: [], handlers: [] };
let rl = null;
function startStdin() {
  if (rl) return;
  rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    for (const h of lines.handlers) h(line.trim());
    const w = lines.waiters.shift();
    if (w) w(line.trim());
    else lines.queue.push(line.trim());
  });
}
function onLine(handler) {
  startStdin();
  lines.handlers.push(handler);
}
function nextLine(timeoutMs) {
  startStdin();
  if (lines.queue.length) return Promise.resolve(lines.queue.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no command from run.py")), timeoutMs);
    lines.waiters.push((line) => { clearTimeout(timer); resolve(line); });
  });
}
async function hold(name, timeoutMs = 120000) {
  process.stdout.write(`@hold ${name}\n`);
  const line = await nextLine(timeoutMs);
  if (line !== "go") throw new Error(`unexpected answer ${line}`);
}
function mark(name) {
  process.stdout.write(`@mark ${name}\n`);
}
function say(line) {
  process.stdout.write(`${line}\n`);
}

// -- statistics ---------------------------------------------------------------------------

function percentiles(values, ps = [50, 90, 99]) {
  const out = { n: values.length };
  if (!values.length) {
    for (const p of ps) out[`p${p}`] = null;
    out.max = null;
    return out;
  }
  const v = Float64Array.from(values).sort();
  for (const p of ps) {
    const i = Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1));
    out[`p${p}`] = +v[i].toFixed(3);
  }
  out.max = +v[v.length - 1].toFixed(3);
  return out;
}

// -- clients ------------------------------------------------------------------------------

function clientOptions(extra = {}) {
  return {
    transports: [cfg.transport || "websocket"],
    forceNew: true,
    reconnection: false,
    timeout: cfg.connectTimeoutMs || 20000,
    perMessageDeflate: false,
    ...extra,
  };
}

// Resolves with a connected socket, or rejects (connect_error or timeout).
function connectOne(extra = {}) {
  return new Promise((resolve, reject) => {
    const s = io(cfg.url, clientOptions(extra));
    const timer = setTimeout(() => {
      s.close();
      reject(new Error("connect timeout"));
    }, (cfg.connectTimeoutMs || 20000) + 1000);
    s.once("connect", () => { clearTimeout(timer); resolve(s); });
    s.once("connect_error", (err) => { clearTimeout(timer); s.close(); reject(err); });
  });
}

// `n` sockets with at most `concurrency` connecting at once; WebSockets are spread over
// cfg.localAddresses (source IPs) so that ephemeral ports never run short.
async function connectMany(n, concurrency, extra = {}, onSocket = null) {
  const sockets = [];
  const errors = {};
  const addrs = (cfg.transport || "websocket") === "websocket" ? (cfg.localAddresses || []) : [];
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const opts = { ...extra, ...(addrs.length ? { localAddress: addrs[i % addrs.length] } : {}) };
      try {
        const s = await connectOne(opts);
        if (onSocket) onSocket(s, i);
        sockets[i] = s;
      } catch (err) {
        const key = String((err && err.message) || err);
        errors[key] = (errors[key] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { sockets: sockets.filter(Boolean), errors };
}

function closeAll(sockets) {
  for (const s of sockets) {
    try { s.close(); } catch (e) { /* already closed */ }
  }
}

function countInto(obj, key) {
  obj[key] = (obj[key] || 0) + 1;
}

function result(obj) {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
}

// Runs main(); a failure is a RESULT with an error, and the process always exits.
function run(main) {
  const limitMs = (cfg.limit || 300) * 1000;
  const killer = setTimeout(() => {
    result({ error: `client over its time limit (${limitMs} ms)` });
    process.exit(2);
  }, limitMs);
  main().then(() => {
    clearTimeout(killer);
    setTimeout(() => process.exit(0), 100);
  }, (err) => {
    result({ error: String((err && err.stack) || err) });
    process.exit(1);
  });
}

module.exports = {
  cfg, now, sleep, log, hold, mark, say, nextLine, onLine, percentiles, connectOne,
  connectMany, closeAll, countInto, result, run,
};
