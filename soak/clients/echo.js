// Echo clients of the flood scenario: `clients` sockets (role "echo"), each sending
// "echo" with an ack, waiting for it, then `pace` ms, again; every round trip is timed
// and filed under the current phase.
//
// config: { url, clients, pace (ms), size (bytes of the echoed string), limit }
// stdout: "READY" once connected; stdin: "phase <name>" (the phase that samples are
//         filed under from now on; "-" files nothing), "stop" (report and exit).
// RESULT: { clients, connected, phases: {name: {n, p50, p90, p99, max, failed}}, samples:
//           {name: [[t_ms, latency_ms], ...]} (when cfg.samples), timeouts, disconnects }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const clients = cfg.clients || 20;
  const pace = cfg.pace ?? 20;
  const payload = "e".repeat(cfg.size || 32);
  const lat = {};
  const samples = {};
  let phase = "-";
  let stopping = false;
  let timeouts = 0;
  const failed = {};
  const disconnects = {};
  const conn = await L.connectMany(clients, 10, { auth: { role: "echo" } }, (s) => {
    s.on("disconnect", (reason) => {
      if (!stopping) L.countInto(disconnects, reason);
    });
  });
  if (conn.sockets.length < clients) throw new Error(`only ${conn.sockets.length}/${clients} connected: ${JSON.stringify(conn.errors)}`);
  const t0 = L.now();
  async function loop(s, i) {
    await L.sleep((i * pace) / clients); // spread the clients over one pace period
    while (!stopping && s.connected) {
      const p = phase;
      const t = L.now();
      const ok = await new Promise((resolve) => s.timeout(30000).emit("echo", payload, (err) => resolve(!err)));
      const dt = L.now() - t;
      if (!ok) timeouts++;
      // an answered echo counts if its phase did not change meanwhile; one that failed
      // (no ack within 30 s, or the socket dropped) counts in its phase with the time
      // it waited: a lower bound, so a server that drops clients cannot look fast
      if (p !== "-" && (p === phase || !ok)) {
        (lat[p] = lat[p] || []).push(dt);
        if (!ok) failed[p] = (failed[p] || 0) + 1;
        if (cfg.samples) (samples[p] = samples[p] || []).push([+(t - t0).toFixed(1), +dt.toFixed(3)]);
      }
      if (pace) await L.sleep(pace);
    }
  }
  const loops = conn.sockets.map(loop);
  L.say("READY");
  for (;;) {
    const line = await L.nextLine((cfg.limit || 300) * 1000);
    if (line.startsWith("phase ")) phase = line.slice(6).trim();
    else if (line === "stop") break;
  }
  stopping = true;
  await Promise.race([Promise.all(loops), L.sleep(5000)]);
  L.closeAll(conn.sockets);
  const phases = {};
  for (const [k, v] of Object.entries(lat)) phases[k] = { ...L.percentiles(v, [50, 90, 99]), failed: failed[k] || 0 };
  L.result({ clients, connected: conn.sockets.length, phases, samples: cfg.samples ? samples : undefined, timeouts, disconnects });
}

L.run(main);
