// Connect to tests/servers/sio_app.py with socket.io-client, print "CONNECTED <id>", then
// just stay connected (answering pings) until the test stops or kills this process.
//
//   node sio_hold.js '<config-json>'      config: { port, transport, lifetime (ms) }
//
// The test signals the process (SIGKILL: abrupt death; SIGSTOP: a client that stops
// answering pings) and watches what the server logs. Exits by itself after `lifetime`.

const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const s = io(`http://127.0.0.1:${cfg.port}`, {
  transports: [cfg.transport], forceNew: true, reconnection: false, timeout: 10000,
});
// The client never gives up on the server by itself (no client-side heartbeat check), so
// whatever ends the session is the server's doing, however slow the machine is.
s.io.engine._resetPingTimeout = () => {};
s.io.engine._hasPingExpired = () => false;
s.on("connect", () => console.log(`CONNECTED ${s.id}`));
s.on("connect_error", (err) => console.log(`CONNECT_ERROR ${err.message}`));
s.on("disconnect", (reason) => console.log(`DISCONNECTED ${reason}`));
setTimeout(() => process.exit(0), cfg.lifetime || 60000);
