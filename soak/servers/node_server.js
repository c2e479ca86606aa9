// Node socket.io 4.8 soak server: the protocol of soak/servers/common.py (a superset of
// bench/servers/node_server.js): roles from the CONNECT auth, disconnect reasons per role,
// "flood" counted with an order check, "broadcast" (n, size) emitting "msg" (i, payload)
// to "room" with a setImmediate after every emit, GET /stats, GET /broadcast?n=&size=.
//
//   NODE_PATH=bench/node_modules node soak/servers/node_server.js --port 5000 \
//       [--ping-interval S --ping-timeout S]     (--max-write-buffer is ignored)

const http = require("http");
const { Server } = require("socket.io");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const port = Number(arg("--port"));
const pingInterval = Math.round(Number(arg("--ping-interval", "25")) * 1000);
const pingTimeout = Math.round(Number(arg("--ping-timeout", "20")) * 1000);

const stats = {
  connected: {},
  reasons: {},
  errors: 0,
  flood: { count: 0, out_of_order: 0 },
  broadcast: { running: false, done: 0 },
};
const floodNext = new Map();
let io = null;

function runBroadcast(n, size) {
  const b = stats.broadcast;
  if (b.running) return;
  const payload = "x".repeat(size);
  const started = performance.now();
  Object.assign(b, { running: true, n, size });
  let i = 0;
  const step = () => {
    if (i < n) {
      io.to("room").emit("msg", i, payload);
      i += 1;
      setImmediate(step);
      return;
    }
    b.running = false;
    b.done += 1;
    b.elapsed_ms = Math.round((performance.now() - started) * 10) / 10;
  };
  step();
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/stats") {
    const connected = {};
    for (const [k, v] of Object.entries(stats.connected)) if (v) connected[k] = v;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ ...stats, connected }));
  } else if (url.pathname === "/broadcast") {
    runBroadcast(Number(url.searchParams.get("n")), Number(url.searchParams.get("size")));
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("started");
  } else {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("soak");
  }
});

io = new Server(httpServer, { pingInterval, pingTimeout, perMessageDeflate: false });

io.on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  const role = typeof auth.role === "string" ? auth.role.slice(0, 32) : "client";
  stats.connected[role] = (stats.connected[role] || 0) + 1;
  socket.join("room");
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on("flood", (seq) => {
    const expected = floodNext.get(socket.id) || 0;
    if (seq !== expected) stats.flood.out_of_order += 1;
    floodNext.set(socket.id, (Number.isInteger(seq) ? seq : expected) + 1);
    stats.flood.count += 1;
  });
  socket.on("flood_end", (ack) => {
    if (typeof ack === "function") ack({ ...stats.flood });
  });
  socket.on("broadcast", (n, size, ack) => {
    runBroadcast(Number(n), Number(size));
    if (typeof ack === "function") ack("started");
  });
  socket.on("disconnect", (reason) => {
    stats.connected[role] -= 1;
    const r = (stats.reasons[role] = stats.reasons[role] || {});
    r[reason] = (r[reason] || 0) + 1;
    floodNext.delete(socket.id);
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`READY ${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
