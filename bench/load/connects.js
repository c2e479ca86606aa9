// Connects: `clients` WebSocket Socket.IO connections as fast as possible with at most
// `concurrency` in flight; then holds them all while run.py reads the server's RSS.
// Also used for the idle scenario (clients 10000, hold `idle` s with a short ping interval,
// counting the heartbeats each client gets).
//
// config: { url, clients, concurrency, deflate, localAddresses, idle (s, 0 = no idle phase),
//           pingInterval (s, only to compute the expected heartbeats), settle (s) }
// holds:  "baseline" (before connecting; after a 5-socket warm-up that is closed again),
//         "held" (all connected, after `settle` s), and with idle > 0 "idle_end".
// RESULT: { connected, connects_per_s, connect_ms: {p50,p99,...}, pings, expected_pings,
//           disconnects, gen, connect_errors, deflate_negotiated }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const clients = cfg.clients || 1000;
  const idle = cfg.idle || 0;
  // warm-up: lazy imports and first-request work are not per-connection costs
  const warm = await L.connectMany(5, 5);
  L.closeAll(warm.sockets);
  await L.sleep(500);
  await L.hold("baseline");

  let pings = 0;
  let countPings = false;
  let disconnects = 0;
  const reasons = {};
  const cpu = L.cpuWindow();
  const conn = await L.connectMany(clients, cfg.concurrency || 50, (s, i) => {
    s.io.engine.on("ping", () => { if (countPings) pings++; });
    s.on("disconnect", (reason) => {
      if (reason === "io client disconnect") return;
      disconnects++;
      reasons[reason] = (reasons[reason] || 0) + 1;
      if (disconnects <= 5) L.log(`disconnect ${i}: ${reason}`);
    });
  });
  const genConnect = cpu();
  const sockets = conn.sockets;
  await L.sleep((cfg.settle ?? 1) * 1000);
  await L.hold("held");

  let genIdle = null;
  let idleMs = null;
  if (idle > 0) {
    countPings = true;
    const cpuIdle = L.cpuWindow();
    const t0 = L.now();
    await L.sleep(idle * 1000);
    idleMs = L.now() - t0;
    genIdle = cpuIdle();
    countPings = false;
    await L.hold("idle_end");
  }
  const negotiated = sockets.length ? L.deflateNegotiated(sockets[0]) : null;
  const stillConnected = sockets.filter((s) => s.connected).length;
  L.closeAll(sockets);
  const seconds = conn.elapsedMs / 1000;
  L.result({
    clients,
    connected: sockets.length,
    still_connected: stillConnected,
    connects_per_s: +(sockets.length / seconds).toFixed(1),
    connect_elapsed_s: +seconds.toFixed(3),
    connect_ms: L.percentiles(conn.latencies, [50, 90, 99]),
    idle_s: idleMs === null ? null : +(idleMs / 1000).toFixed(3),
    pings,
    // each socket gets a ping every pingInterval: about idle/pingInterval per socket
    expected_pings: idle > 0 && cfg.pingInterval
      ? Math.floor(idle / cfg.pingInterval) * sockets.length : null,
    disconnects,
    disconnect_reasons: reasons,
    gen: genIdle || genConnect,
    gen_connect: genConnect,
    connect_errors: conn.errors,
    deflate_negotiated: negotiated,
  });
}

L.run(main, (cfg.idle || 0) * 1000 + 600000);
