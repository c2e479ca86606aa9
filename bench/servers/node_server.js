// Node socket.io 4.8 benchmark server: the same protocol as the Python servers
// (see common.py): join "room" on connection, "echo" acks its args, "broadcast" (n, size)
// emits "msg" n times to "room" then acks "done"; prints READY once listening.
//
//   node bench/servers/node_server.js --port 5000 [--deflate] [--ping-interval S]

const http = require("http");
const { Server } = require("socket.io");

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const port = Number(arg("--port"));
const pingInterval = Math.round(Number(arg("--ping-interval", "25")) * 1000);
const pingTimeout = Math.round(Number(arg("--ping-timeout", "20")) * 1000);
const deflate = process.argv.includes("--deflate");

const httpServer = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end("bench");
});
const io = new Server(httpServer, {
  pingInterval,
  pingTimeout,
  // socket.io's default is perMessageDeflate: false; with --deflate compress everything
  // (threshold 0) so that the small benchmark messages are compressed too.
  perMessageDeflate: deflate ? { threshold: 0 } : false,
});

io.on("connection", (socket) => {
  socket.join("room");
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
  });
  socket.on("broadcast", (n, size, ack) => {
    const payload = "x".repeat(Number(size));
    for (let i = 0; i < Number(n); i++) io.to("room").emit("msg", payload);
    if (typeof ack === "function") ack("done");
  });
});

httpServer.listen(port, "127.0.0.1", () => console.log(`READY ${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
