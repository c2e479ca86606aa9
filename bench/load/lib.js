// Shared by the load generators in bench/load/.
//
// Protocol with bench/run.py (the orchestrator):
//   argv[2]            the scenario's config as JSON
//   stdout "@mark X"   a point in time: run.py samples the server's /proc then and goes on
//   stdout "@hold X"   run.py samples the server's /proc, then writes "go\n" to our stdin;
//                      we wait for it (bounded) before going on
//   stdout "RESULT {}" the last line: this run's measurements, one JSON object
//   stderr             diagnostics, kept in run.py's log
// Every wait is bounded, and every generator exits by itself.

const http = require("http");
const { io } = require("socket.io-client");
const readline = require("readline");

const cfg = JSON.parse(process.argv[2] || "{}");

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function log(...args) {
  process.stderr.write(`[${process.argv[1].split("/").pop()}] ${args.join(" ")}\n`);
}

// -- talking to run.py ------------------------------------------------------------------

let stdinLines = null;
function nextStdinLine(timeoutMs) {
  if (!stdinLines) {
    stdinLines = { queue: [], waiters: [] };
    const rl = readline.createInterface({ input: process.stdin });
    rl.on("line", (line) => {
      const w = stdinLines.waiters.shift();
      if (w) w(line);
      else stdinLines.queue.push(line);
    });
  }
  if (stdinLines.queue.length) return Promise.resolve(stdinLines.queue.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no answer from run.py")), timeoutMs);
    stdinLines.waiters.push((line) => { clearTimeout(timer); resolve(line); });
  });
}

function mark(name) {
  process.stdout.write(`@mark ${name}\n`);
}

async function hold(name, timeoutMs = 60000) {
  process.stdout.write(`@hold ${name}\n`);
  const line = await nextStdinLine(timeoutMs);
  if (line.trim() !== "go") throw new Error(`unexpected answer ${line}`);
}

// -- CPU of this process ------------------------------------------------------------------

// A window over this generator's own CPU time: pct is of ONE core (the generator is
// pinned to one core by run.py), so ~100 means the generator was the bottleneck.
function cpuWindow() {
  const c0 = process.cpuUsage();
  const t0 = now();
  return () => {
    const c = process.cpuUsage(c0);
    const wall = now() - t0;
    const cpuMs = (c.user + c.system) / 1000;
    return { cpu_ms: +cpuMs.toFixed(1), wall_ms: +wall.toFixed(1),
             cpu_pct: +(100 * cpuMs / Math.max(wall, 1e-9)).toFixed(1) };
  };
}

// -- statistics ---------------------------------------------------------------------------

function percentiles(values, ps = [50, 90, 99, 99.9]) {
  const out = {};
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

// Long-polling requests reuse their TCP connections, as a browser's do (HTTP/1.1
// keep-alive). Without an agent, xmlhttprequest-ssl (engine.io-client's polling in Node)
// opens a connection per request and sends `Connection: close`: cfg.keepAlive === false.
const pollingAgent = cfg.keepAlive === false ? false : new http.Agent({ keepAlive: true });

function clientOptions(extra = {}) {
  const transport = cfg.transport || "websocket";
  return {
    transports: [transport],
    ...(transport === "polling" ? { agent: pollingAgent } : {}),
    forceNew: true,
    reconnection: false,
    timeout: cfg.connectTimeoutMs || 30000,
    // ws offers permessage-deflate only when asked; threshold 0 compresses every message
    perMessageDeflate: cfg.deflate ? { threshold: 0 } : false,
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
    }, (cfg.connectTimeoutMs || 30000) + 1000);
    s.once("connect", () => { clearTimeout(timer); resolve(s); });
    s.once("connect_error", (err) => { clearTimeout(timer); s.close(); reject(err); });
  });
}

// Connects `n` sockets, at most `concurrency` in flight, spreading WebSocket connections
// over cfg.localAddresses (source IPs) so that ephemeral ports never run short.
// Returns { sockets, errors, latencies (ms), elapsedMs }.
async function connectMany(n, concurrency = 50, onSocket = null) {
  const sockets = [];
  const latencies = [];
  const errors = {};
  const addrs = (cfg.transport || "websocket") === "websocket" ? (cfg.localAddresses || []) : [];
  let next = 0;
  const t0 = now();
  async function worker() {
    while (next < n) {
      const i = next++;
      const extra = addrs.length ? { localAddress: addrs[i % addrs.length] } : {};
      const t = now();
      try {
        const s = await connectOne(extra);
        latencies.push(now() - t);
        if (onSocket) onSocket(s, i);
        sockets.push(s);
      } catch (err) {
        const key = String(err && err.message || err);
        errors[key] = (errors[key] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { sockets, errors, latencies, elapsedMs: now() - t0 };
}

function deflateNegotiated(s) {
  const t = s.io && s.io.engine && s.io.engine.transport;
  if (!t || t.name !== "websocket" || !t.ws) return null;
  return String(t.ws.extensions || "").includes("permessage-deflate");
}

function closeAll(sockets) {
  for (const s of sockets) {
    try { s.close(); } catch (e) { /* already closed */ }
  }
}

function result(obj) {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
}

// Runs main(); a failure is a RESULT with an error, and the process always exits.
function run(main, limitMs) {
  const killer = setTimeout(() => {
    result({ error: `generator over its time limit (${limitMs} ms)` });
    process.exit(2);
  }, limitMs);
  main().then(() => {
    clearTimeout(killer);
    setTimeout(() => process.exit(0), 200);
  }, (err) => {
    result({ error: String(err && err.stack || err) });
    process.exit(1);
  });
}

module.exports = {
  cfg, now, sleep, log, mark, hold, cpuWindow, percentiles, connectOne, connectMany,
  deflateNegotiated, closeAll, result, run,
};
