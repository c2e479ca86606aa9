// Echo with ack: `clients` sockets, each sending the next "echo" as soon as the previous
// one's ack arrives (closed loop), for `duration` s after `warmup` s. Used for echo_ws
// (transport "websocket") and polling (transport "polling").
//
// config: { url, transport, clients, duration, warmup, size, deflate, localAddresses }
// RESULT: { acks, acks_per_s, latency_ms: {p50,p90,p99,p99.9,max}, gen: {cpu_pct,...},
//           mismatches, stalled, connect_errors, deflate_negotiated }

const L = require("./lib");
const { cfg } = L;

async function main() {
  const clients = cfg.clients || 50;
  const payload = "e".repeat(cfg.size || 32);
  const conn = await L.connectMany(clients, Math.min(clients, 50));
  if (conn.sockets.length < clients) {
    L.closeAll(conn.sockets);
    throw new Error(`only ${conn.sockets.length}/${clients} connected: ${JSON.stringify(conn.errors)}`);
  }
  const sockets = conn.sockets;
  let running = true;
  let recording = false;
  let acks = 0;
  let mismatches = 0;
  let outstanding = 0;
  const lat = [];
  const sentAt = new Float64Array(sockets.length);

  function send(i) {
    const s = sockets[i];
    const t = L.now();
    sentAt[i] = t;
    outstanding++;
    s.emit("echo", payload, (r) => {
      outstanding--;
      sentAt[i] = 0;
      const t1 = L.now();
      if (r !== payload) mismatches++;
      if (recording) {
        lat.push(t1 - t);
        acks++;
      }
      if (running) send(i);
    });
  }
  let disconnects = 0;
  sockets.forEach((s, i) => {
    s.on("disconnect", (reason) => {
      if (reason === "io client disconnect") return; // our own close at the end
      disconnects++;
      L.log(`disconnect ${i}: ${reason}`);
    });
    send(i);
  });

  // a socket whose ack is overdue by > 5 s counts as stalled (reported, not waited for)
  let maxStalled = 0;
  const watchdog = setInterval(() => {
    const t = L.now();
    let n = 0;
    for (let i = 0; i < sentAt.length; i++) if (sentAt[i] && t - sentAt[i] > 5000) n++;
    maxStalled = Math.max(maxStalled, n);
  }, 1000);

  await L.sleep((cfg.warmup ?? 1) * 1000);
  L.mark("start");
  const cpu = L.cpuWindow();
  const t0 = L.now();
  recording = true;
  await L.sleep((cfg.duration || 10) * 1000);
  recording = false;
  const t1 = L.now();
  const gen = cpu();
  L.mark("end");
  running = false;
  // let the in-flight acks come back (bounded), so that closing does not count as errors
  const deadline = L.now() + 5000;
  while (outstanding > 0 && L.now() < deadline) await L.sleep(20);
  clearInterval(watchdog);
  const negotiated = L.deflateNegotiated(sockets[0]);
  L.closeAll(sockets);
  const seconds = (t1 - t0) / 1000;
  L.result({
    transport: cfg.transport || "websocket",
    clients,
    duration_s: +seconds.toFixed(3),
    acks,
    acks_per_s: +(acks / seconds).toFixed(1),
    latency_ms: L.percentiles(lat),
    gen,
    mismatches,
    stalled: maxStalled,
    unanswered_at_end: outstanding,
    disconnects,
    connect_errors: conn.errors,
    deflate_negotiated: negotiated,
  });
}

L.run(main, ((cfg.warmup ?? 1) + (cfg.duration || 10)) * 1000 + 120000);
