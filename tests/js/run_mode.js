// Drives a Socket.IO app with the official engine.io-client: polling→websocket upgrade,
// then websocket-only; speaks Socket.IO by hand (CONNECT, an event with an ack).
// Usage: node run_mode.js PORT  → prints {"results": [...]}
const { Socket } = require("engine.io-client");

function session(port, transports) {
  return new Promise((resolve, reject) => {
    const s = new Socket(`http://127.0.0.1:${port}`, { path: "/socket.io/", transports });
    const out = { transports, messages: [] };
    const timer = setTimeout(() => reject(new Error("timeout " + JSON.stringify(out))), 15000);
    s.on("open", () => { out.open = s.transport.name; s.send("0"); });
    s.on("upgrade", (t) => { out.upgraded = t.name; });
    s.on("message", (m) => {
      out.messages.push(m);
      if (m.startsWith("0{")) s.send('21["my event"]');
      if (m.startsWith("31[")) {
        const finish = () => { out.final = s.transport.name; clearTimeout(timer); s.close(); resolve(out); };
        if (transports.length > 1 && !out.upgraded) s.once("upgrade", finish); else finish();
      }
    });
    s.on("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

(async () => {
  const port = process.argv[2];
  const results = [await session(port, ["polling", "websocket"]), await session(port, ["websocket"])];
  console.log(JSON.stringify({ results }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
