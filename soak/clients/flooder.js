// The flooder of the flood scenario: one socket (role "flooder") that emits "flood" (seq)
// `n` times as fast as it can (no acks; `chunk` emits per event-loop turn), then
// "flood_end" with an ack: the server's count of flood events at that moment.
//
// config: { url, n, chunk, limit }
// stdout: "READY" once connected; stdin "go" starts the flood; "SENT <ms>" once every
//         emit is written; then RESULT; stays connected until "stop" (or the limit).
// RESULT: { n, sent_ms, end_ack, end_ack_ms, disconnects }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const n = cfg.n || 100000;
  const chunk = cfg.chunk || 1000;
  const disconnects = {};
  const s = await L.connectOne({ auth: { role: "flooder" } });
  s.on("disconnect", (reason) => L.countInto(disconnects, reason));
  L.say("READY");
  const go = await L.nextLine((cfg.limit || 300) * 1000);
  if (go !== "go") throw new Error(`unexpected command ${go}`);
  const t0 = L.now();
  for (let i = 0; i < n; i += chunk) {
    for (let j = i; j < Math.min(n, i + chunk); j++) s.emit("flood", j);
    await new Promise((r) => setImmediate(r));
  }
  const sent = L.now() - t0;
  L.say(`SENT ${sent.toFixed(1)}`);
  const ack = await new Promise((resolve) => s.timeout((cfg.ackTimeout || 120) * 1000).emit("flood_end", (err, a) => resolve(err ? { error: String(err) } : a)));
  const ackMs = L.now() - t0;
  L.result({ n, sent_ms: +sent.toFixed(1), end_ack: ack, end_ack_ms: +ackMs.toFixed(1), disconnects });
  const line = await L.nextLine((cfg.limit || 300) * 1000).catch(() => "stop");
  if (line !== "stop") L.log(`unexpected command ${line}`);
  s.close();
}

L.run(main);
